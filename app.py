"""drywall-qa web app: inspect photos, review predictions against ground truth, evaluate splits.

    python app.py                                  # bundled model, data from DRYWALL_QA_DATA / ./data / ../shared/data
    python app.py --model runs/lite/best --data-root ../shared/data --port 7860
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from drywall_qa.ui.memory import cap_malloc_arenas  # light: before torch or gradio start threads

cap_malloc_arenas()

# after the analytics switch and the arena cap, before gradio is imported (pyproject: E402 allowed here)
from drywall_qa.cli_args import count_arg, existing_folder_arg, folder_arg, port_arg, positive_float_arg, threads_arg
from drywall_qa.data import data_roots
from drywall_qa.ui.app import MODEL_THREADS, AppConfig, build_app, launch
from drywall_qa.ui.result_store import DEFAULT_BUDGET_MB
from drywall_qa.ui.retention import Retention


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python app.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="lite",
                        help="lite (bundled, default), clipseg (CIDAS/clipseg-rd64-refined) or a checkpoint folder")
    parser.add_argument("--data-root", action="append", type=existing_folder_arg, dest="roots", metavar="DIR",
                        help="folder of COCO splits for Review/Evaluate (repeatable; default: DRYWALL_QA_DATA, "
                        "./data and ../shared/data when present). Nothing outside these folders is read.")
    parser.add_argument("--out", type=folder_arg, default=Path("outputs"),
                        help="reviews and evaluations (default outputs)")
    parser.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    parser.add_argument("--threads", type=threads_arg, default=MODEL_THREADS,
                        help=f"CPU threads per model call (default {MODEL_THREADS}: requests are served two at a time; "
                        "0 = one per core, torch's default)")
    parser.add_argument("--host", help="interface to listen on (default 127.0.0.1, or GRADIO_SERVER_NAME)")
    parser.add_argument("--port", type=port_arg, help="port, 1 to 65535 (default 7860, or GRADIO_SERVER_PORT)")
    parser.add_argument("--models-dir", action="append", type=folder_arg, dest="models_dirs", metavar="DIR",
                        help="folder of checkpoints that clients may load from the model box (repeatable; default "
                        "./runs). Other folders are refused to clients; --model DIR loads any at start-up.")
    parser.add_argument("--state-mb", type=positive_float_arg, default=DEFAULT_BUDGET_MB,
                        help=f"memory for all sessions' Inspect runs kept for re-rendering (default "
                        f"{DEFAULT_BUDGET_MB} MB; the oldest are released beyond it)")
    parser.add_argument("--keep-evaluations", type=count_arg(1), default=Retention.count, metavar="N",
                        help=f"evaluation folders kept in OUT/evaluations, newest first (default {Retention.count})")
    parser.add_argument("--keep-evaluations-mb", type=positive_float_arg, default=Retention.megabytes, metavar="MB",
                        help=f"most disk the kept evaluation folders may use (default {Retention.megabytes:.0f} MB)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    roots = args.roots or data_roots()
    config = AppConfig(model=args.model, roots=roots, out_dir=args.out, device=args.device,
                       threads=args.threads or None, models_dirs=args.models_dirs or [Path("runs")],
                       state_mb=args.state_mb, retention=Retention(args.keep_evaluations, args.keep_evaluations_mb))
    launch(build_app(config), config, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
