"""A torch module's inference, exported once to ONNX, cached on disk and run in ONNX Runtime on the CPU.

The graph file is named by a SHA-256 of the module's weights and the export settings, and carries that key in its
metadata: a file that ONNX Runtime cannot load (corrupt, cut short) or whose key differs (stale) is rebuilt, never
used. The cache folder is ``DRYWALL_QA_CACHE`` (else ``$XDG_CACHE_HOME/drywall-qa``, else ``~/.cache/drywall-qa``)
``/onnx``; where it cannot be written (a read-only install) a folder under the system's temp dir is used, and where
neither can, the graph is not used (eager PyTorch runs, with a message).

The graph runs only while it computes what the module would: with gradients off, the module in eval mode, inputs
on the CPU, and the weights unchanged since the export. Weights changed in place (an optimiser step, loading a state
dict) or replaced bump a cheap fingerprint (each tensor's storage and version counter), and the next call looks up or
exports the graph of the new weights.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from drywall_qa.core.atomic import write_atomic

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

log = logging.getLogger("drywall_qa.core.engine")
#: ONNX opset of the exported graphs (ONNX Runtime 1.32 runs up to 23)
OPSET = 18
#: metadata field holding the cache key
KEY_FIELD = "drywall_qa_key"
#: bump when the way graphs are exported changes, so older cached graphs are not used
EXPORT_VERSION = 1


def cache_root() -> Path:
    """The folder graphs are cached in (see the module docstring)."""
    base = os.environ.get("DRYWALL_QA_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "drywall-qa")
    return Path(base) / "onnx"


def _writable_folder() -> Path | None:
    """:func:`cache_root` if it can be written, else a per-user folder in the temp dir, else None."""
    for folder in (cache_root(), Path(tempfile.gettempdir()) / f"drywall-qa-onnx-{os.getuid()}"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if os.access(folder, os.W_OK):
                return folder
        except OSError:
            pass
    return None


class _Traced(nn.Module):
    """``function`` as a module's forward, with ``owner`` registered so the exporter sees its weights."""

    def __init__(self, owner: nn.Module, function: Callable[..., tuple[torch.Tensor, ...]]) -> None:
        super().__init__()
        self.owner, self.function = owner, function

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.function(*inputs)


def fingerprint(module: nn.Module) -> tuple:
    """Changes whenever a weight or buffer of ``module`` is replaced or modified in place (version counters; a
    model loaded under ``torch.inference_mode`` has none, and only its storage is compared)."""
    return tuple((id(t), t.data_ptr(), -1 if t.is_inference() else t._version)
                 for t in (*module.parameters(), *module.buffers()))


def weights_hash(module: nn.Module, settings: str) -> str:
    """SHA-256 of every weight and buffer of ``module`` (names, shapes, bytes) and the export ``settings``."""
    digest = hashlib.sha256(f"{EXPORT_VERSION}|{torch.__version__}|{OPSET}|{settings}".encode())
    for name, tensor in module.state_dict().items():
        data = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{data.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()


class OnnxGraph:
    """``function`` of ``owner``'s weights (tensors in, a tensor or a tuple of tensors out) run in ONNX Runtime.

    ``example`` makes the inputs the export traces; ``input_names``/``output_names`` name the graph's tensors and
    ``dynamic_axes`` the axes that may vary (as ``torch.onnx.export`` takes them). ``name`` prefixes the cached file.
    """

    def __init__(self, owner: nn.Module, function: Callable[..., tuple[torch.Tensor, ...] | torch.Tensor], name: str,
                 example: Callable[[], tuple[torch.Tensor, ...]], input_names: Sequence[str],
                 output_names: Sequence[str], dynamic_axes: dict[str, dict[int, str]]) -> None:
        self.owner, self.function, self.name, self.example = owner, function, name, example
        self.input_names, self.output_names, self.dynamic_axes = list(input_names), list(output_names), dynamic_axes
        self._session = None
        self._state: tuple = ()  # (fingerprint, threads) the session was made for
        self._lock = threading.Lock()
        #: why the graph is not used (a failed export or an unwritable cache); None while it is usable
        self.disabled: str | None = None
        #: the cached file of the current session
        self.path: Path | None = None

    def applies(self, inputs: Sequence[torch.Tensor]) -> bool:
        """Whether the graph computes what eager would here: inference only, eval mode, float32 CPU inputs."""
        return (self.disabled is None and not torch.is_grad_enabled() and not self.owner.training
                and all(t.device.type == "cpu" and t.dtype == torch.float32 for t in inputs))

    def run(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...] | None:
        """The outputs, or None when the graph cannot be made (then :attr:`disabled` says why, logged once)."""
        session = None if self.disabled else self._current_session()
        if session is None:
            return None
        feed = {name: t.detach().contiguous().numpy() for name, t in zip(self.input_names, inputs)}
        return tuple(torch.from_numpy(out) for out in session.run(self.output_names, feed))

    def _current_session(self) -> InferenceSession | None:
        state = (fingerprint(self.owner), torch.get_num_threads())
        with self._lock:
            if self._session is None or state != self._state:
                self._session = None
                try:
                    self._session = self._load_or_export(state[1])
                except Exception as err:  # any export or runtime failure: eager PyTorch stays correct
                    self._disable(f"export to ONNX failed ({type(err).__name__}: {str(err)[:200]})")
                self._state = state
            return self._session

    def _disable(self, reason: str) -> None:
        self.disabled = reason
        log.warning("drywall-qa: %s; running %s in PyTorch eager instead", reason, self.name)

    def _load_or_export(self, threads: int) -> InferenceSession | None:
        folder = _writable_folder()
        if folder is None:
            self._disable(f"no writable cache folder for the ONNX graph ({cache_root()} nor the temp dir)")
            return None
        key = weights_hash(self.owner, f"{self.name}|{self.input_names}|{self.output_names}|{self.dynamic_axes}")
        path = folder / f"{self.name}-{key[:20]}.onnx"
        session = _open(path, key, threads) if path.is_file() else None
        if session is None:
            log.warning("drywall-qa: exporting %s to ONNX Runtime once, into %s", self.name, path)
            write_atomic(path, self._export(key))
            session = _open(path, key, threads)
            if session is None:
                raise RuntimeError(f"{path} does not load after export")
        self.path = path
        return session

    def _export(self, key: str) -> bytes:
        """The ONNX graph of the function with ``key`` in its metadata."""
        import onnx

        buffer = io.BytesIO()
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
            # the exporter puts the module it is given back in the mode it found it in, recursively: eval, as the
            # owner is whenever the graph applies
            torch.onnx.export(_Traced(self.owner, self.function).eval(), self.example(), buffer, dynamo=False,
                              opset_version=OPSET, input_names=self.input_names, output_names=self.output_names,
                              dynamic_axes=self.dynamic_axes)
        graph = onnx.load_from_string(buffer.getvalue())
        onnx.helper.set_model_props(graph, {KEY_FIELD: key})
        return graph.SerializeToString()


def _open(path: Path, key: str, threads: int) -> InferenceSession | None:
    """An ONNX Runtime session of ``path`` if it loads and carries ``key``; else None, and the file is removed."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    # threads that spin while waiting take the cores other threads need on a shared CPU (docs/benchmarks.md)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: a corrupt file is reported here, not by ONNX Runtime
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        if session.get_modelmeta().custom_metadata_map.get(KEY_FIELD) == key:
            return session
        reason = "was exported from other weights or settings"
    except Exception as err:  # onnxruntime raises its own exception types for unreadable graphs
        reason = f"does not load ({type(err).__name__})"
    log.warning("drywall-qa: cached ONNX graph %s %s; exporting it again", path, reason)
    path.unlink(missing_ok=True)
    return None
