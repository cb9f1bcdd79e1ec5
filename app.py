"""drywall-qa web app: inspect photos, review predictions against ground truth, evaluate splits.

    python app.py                                  # bundled model, data from DRYWALL_QA_DATA / ./data / ../shared/data
    python app.py --model runs/lite/best --data-root ../shared/data --port 7860
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from drywall_qa.ui.memory import cap_malloc_arenas  # noqa: E402 — light: before torch or gradio start threads

cap_malloc_arenas()

from drywall_qa.data import data_roots  # noqa: E402 — after the analytics switch, before gradio is imported
from drywall_qa.ui.app import MODEL_THREADS, AppConfig, build_app, launch  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python app.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="lite",
                        help="lite (bundled, default), clipseg (CIDAS/clipseg-rd64-refined) or a checkpoint folder")
    parser.add_argument("--data-root", action="append", type=Path, dest="roots", metavar="DIR",
                        help="folder of COCO splits for Review/Evaluate (repeatable; default: DRYWALL_QA_DATA, "
                        "./data and ../shared/data when present). Nothing outside these folders is read.")
    parser.add_argument("--out", type=Path, default=Path("outputs"), help="reviews and evaluations (default outputs)")
    parser.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    parser.add_argument("--threads", type=int, default=MODEL_THREADS,
                        help=f"CPU threads per model call (default {MODEL_THREADS}: requests are served two at a time; "
                        "0 = one per core, torch's default)")
    parser.add_argument("--host", help="interface to listen on (default 127.0.0.1, or GRADIO_SERVER_NAME)")
    parser.add_argument("--port", type=int, help="port (default 7860, or GRADIO_SERVER_PORT)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    missing = [str(r) for r in args.roots or [] if not r.is_dir()]
    if missing:
        raise SystemExit(f"python app.py: error: --data-root {', '.join(missing)}: no such folder")
    roots = args.roots or data_roots()
    config = AppConfig(model=args.model, roots=roots, out_dir=args.out, device=args.device,
                       threads=args.threads or None)
    launch(build_app(config), config, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
