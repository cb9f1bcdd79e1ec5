"""The app's entry point, ``drywall-qa app`` (and ``python app.py``): light, so that the analytics switch and the
malloc arena cap come before gradio, torch and numpy are imported and start threads."""

from __future__ import annotations

import os

from drywall_qa.serving.memory import cap_malloc_arenas


def main(argv: list[str] | None = None, prog: str = "drywall-qa app") -> None:
    """Serve the app with the command line's options (``prog`` names the command in usage and error lines)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    cap_malloc_arenas()
    from drywall_qa.app.server import serve  # after the switch and the cap: imports gradio and torch

    serve(argv, prog)
