"""``drywall-qa app`` (and ``python app.py``): the app's options, then the app. Light at import, so that the analytics
switch and the malloc arena cap come before gradio, torch and numpy are imported and start threads."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from drywall_qa.serving.memory import cap_malloc_arenas


def proxy_arg(text: str) -> list[str]:
    """``--trusted-proxies``: comma-separated addresses or networks."""
    from drywall_qa.serving.clients import proxy_entry

    try:
        return [proxy_entry(part) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def parse_args(argv: list[str] | None = None, prog: str = "drywall-qa app") -> argparse.Namespace:
    """The app's options (``prog`` names the command in usage and error lines)."""
    from drywall_qa.app.server import MODEL_THREADS
    from drywall_qa.cli.args import (
        add_engine_argument,
        count_arg,
        existing_folder_arg,
        folder_arg,
        port_arg,
        positive_float_arg,
        threads_arg,
    )
    from drywall_qa.serving.result_store import DEFAULT_BUDGET_MB
    from drywall_qa.serving.retention import Retention

    parser = argparse.ArgumentParser(prog=prog, description="drywall-qa web app: inspect photos, review predictions "
                                     "against ground truth, evaluate splits.")
    parser.add_argument("--model", default="lite",
                        help="lite (bundled, default), clipseg (CIDAS/clipseg-rd64-refined) or a checkpoint folder")
    parser.add_argument("--data-root", action="append", type=existing_folder_arg, dest="roots", metavar="DIR",
                        help="folder of COCO splits for Review/Evaluate (repeatable; default: DRYWALL_QA_DATA, "
                        "./data and ../shared/data when present). Nothing outside these folders is read.")
    parser.add_argument("--out", type=folder_arg, default=Path("outputs"),
                        help="reviews, evaluations and jobs (default outputs)")
    parser.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    parser.add_argument("--threads", type=threads_arg, default=MODEL_THREADS,
                        help=f"CPU threads per model call (default {MODEL_THREADS}: requests are served two at a time; "
                        "0 = half the cores)")
    add_engine_argument(parser)
    parser.add_argument("--host", help="interface to listen on (default 127.0.0.1, or GRADIO_SERVER_NAME)")
    parser.add_argument("--port", type=port_arg, help="port, 1 to 65535 (default 7860, or GRADIO_SERVER_PORT)")
    parser.add_argument("--models-dir", action="append", type=folder_arg, dest="models_dirs", metavar="DIR",
                        help="folder of checkpoints that clients may load from the model box (repeatable; default "
                        "./runs). Other folders are refused to clients; --model DIR loads any at start-up.")
    parser.add_argument("--trusted-proxies", type=proxy_arg, default=[], metavar="ADDR[,ADDR…]",
                        help="reverse proxies (addresses or networks, e.g. 10.0.0.0/8) whose X-Forwarded-For header "
                        "names the client; by default nobody's, loopback included, so each connecting address is "
                        "one client")
    parser.add_argument("--state-mb", type=positive_float_arg, default=DEFAULT_BUDGET_MB,
                        help=f"memory for all sessions' Inspect runs kept for re-rendering (default "
                        f"{DEFAULT_BUDGET_MB} MB; the oldest are released beyond it)")
    parser.add_argument("--keep-evaluations", type=count_arg(1), default=Retention.count, metavar="N",
                        help=f"evaluation folders kept in OUT/evaluations, newest first (default {Retention.count})")
    parser.add_argument("--keep-evaluations-mb", type=positive_float_arg, default=Retention.megabytes, metavar="MB",
                        help=f"most disk the kept evaluation folders may use (default {Retention.megabytes:.0f} MB)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, prog: str = "drywall-qa app") -> None:
    """Serve the app with the command line's options (``prog`` names the command in usage and error lines)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    cap_malloc_arenas()
    args = parse_args(argv, prog)
    from drywall_qa.app.server import AppConfig, serve  # imports gradio and torch, after the switch and the cap
    from drywall_qa.data.coco import data_roots
    from drywall_qa.serving.retention import Retention

    config = AppConfig(model=args.model, roots=args.roots or data_roots(), out_dir=args.out, device=args.device,
                       threads=args.threads or None, engine=args.engine, models_dirs=args.models_dirs or [Path("runs")],
                       state_mb=args.state_mb, retention=Retention(args.keep_evaluations, args.keep_evaluations_mb),
                       trusted_proxies=args.trusted_proxies)
    serve(config, host=args.host, port=args.port)
