"""Which inference engine runs a model's prompt-independent part, and how many CPU threads it uses.

``torch`` is PyTorch eager: the reference, and what training, gradients and GPUs always use. ``onnxruntime`` runs an
exported graph in ONNX Runtime on the CPU (:mod:`drywall_qa.core.backends.onnx_graph`), where small-batch convolutions
run several times faster. ``auto`` picks ``onnxruntime`` when it is installed and the model is on the CPU, else
``torch``. Choosing an engine never imports ``onnxruntime`` unless it is the one chosen, and importing this module
imports neither torch nor the backends (the command-line parsers read :data:`ENGINES` before any model loads).
"""

from __future__ import annotations

import importlib.util
import os
from typing import TYPE_CHECKING

from drywall_qa.core.errors import InputError

if TYPE_CHECKING:
    import torch

ENGINES = ("auto", "torch", "onnxruntime")
TORCH, ONNXRUNTIME = "torch", "onnxruntime"
#: the version requirements.txt pins, for the install hint
ONNXRUNTIME_PIN = "onnxruntime==1.32.0 onnx==1.23.2"


def resolve_engine(engine: str, device: torch.device | str) -> str:
    """``torch`` or ``onnxruntime`` for a model on ``device``; one clear error for an unknown name, or for
    ``onnxruntime`` asked for where it cannot run."""
    import torch

    if engine not in ENGINES:
        raise InputError("--engine", f"{engine!r:.40} is not one of {', '.join(ENGINES)}", "use auto, torch or "
                         "onnxruntime")
    on_cpu = torch.device(device).type == "cpu"
    installed = importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None
    if engine == "auto":
        return ONNXRUNTIME if on_cpu and installed else TORCH
    if engine == ONNXRUNTIME and not on_cpu:
        raise InputError("--engine", f"onnxruntime runs on the CPU here, not on {torch.device(device).type}",
                         "use --engine torch, or --device cpu")
    if engine == ONNXRUNTIME and not installed:
        raise InputError("--engine", "onnxruntime is not installed", f"run `pip install {ONNXRUNTIME_PIN}` or use "
                         "--engine torch")
    return engine


def default_threads() -> int:
    """Half the CPU cores this process may use, at least one. Intra-op threads that find their cores busy wait on
    one another at every operator, so on a shared machine fewer threads finish sooner, while an idle one gains at
    most the other half (measured in docs/benchmarks.md). The other half is left to the app's second concurrent
    request, image decoding and blending."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // 2)


def set_threads(threads: int | None) -> int:
    """Intra-op threads for both engines: torch's are set here, and ONNX Runtime sessions read
    ``torch.get_num_threads()`` when they are made (a later change makes a new session). ``None`` or 0:
    :func:`default_threads`. Returns the count set."""
    import torch

    count = threads or default_threads()
    torch.set_num_threads(count)
    return count
