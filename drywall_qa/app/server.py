"""The app: model box on top, then the Inspect, Review, Evaluate and Jobs tabs; queue and launch settings for Spaces;
its command line (started by :func:`drywall_qa.cli.app.main`)."""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
from PIL import Image

import drywall_qa
from drywall_qa.app.evaluate.tab import EvaluateTab
from drywall_qa.app.inspect.tab import InspectTab
from drywall_qa.app.jobs.tab import JobsTab
from drywall_qa.app.messages import error_message, escape_md, hide_server_paths
from drywall_qa.app.models import FOLDER, ModelCache, model_choices, model_key, startup_choice
from drywall_qa.app.review.keys import KEYS_JS
from drywall_qa.app.review.tab import ReviewTab
from drywall_qa.core.engine import set_threads
from drywall_qa.core.errors import InputError
from drywall_qa.core.imaging import MAX_PIXELS
from drywall_qa.data.coco import data_roots
from drywall_qa.data.discovery import discover_splits, open_split
from drywall_qa.serving.clients import trust_proxies
from drywall_qa.serving.lanes import HeavyLane
from drywall_qa.serving.result_store import DEFAULT_BUDGET_MB, ResultStore
from drywall_qa.serving.retention import Retention, prune_leftovers


def examples_dir() -> Path | None:
    """The generated demo images' folder: the ``examples`` package beside ``drywall_qa`` (None where it cannot be
    imported, e.g. an installed copy without the repository)."""
    spec = importlib.util.find_spec("examples")
    return Path(spec.origin).resolve().parent if spec is not None and spec.origin else None


EXAMPLES_DIR = examples_dir()
#: the code's own folder, hidden from messages like the data folders
CODE_DIR = Path(drywall_qa.__file__).resolve().parent
#: requests served at once per event group (a CPU box gains nothing from more; model calls are serialised anyway)
CONCURRENCY = 2
#: CPU threads per model call: CONCURRENCY requests are served at once, so one thread each keeps two cores busy
#: without OpenMP threads waiting on one another (bench/load.py, bundled model, 8 clients on 2 cores: 11.6 instead of
#: 10.2 requests/s, p95 0.83 instead of 0.94 s; on a machine shared with a training job a 2-thread call took 0.5–14 s
#: instead of 0.05–0.1 s)
MODEL_THREADS = 1
#: requests waiting in the queue before new ones are turned away with "queue full"
QUEUE_SIZE = 64
MAX_FILE_SIZE = "25mb"
#: demo images taken from each split of the data roots
EXAMPLES_PER_SPLIT = 2
CSS = """
.dq-legend {list-style: none; padding: 0; margin: 0; display: flex; flex-wrap: wrap; gap: 6px 18px}
.dq-item {display: flex; align-items: center; gap: 6px}
.dq-swatch {display: inline-block; width: 14px; height: 14px; border-radius: 3px; border: 1px solid #0003}
.dq-missing .dq-coverage {color: #b45309; font-weight: 600}
#inspect-masks .caption-label {white-space: normal; overflow: visible; text-overflow: clip}
#evaluate-panels .thumbnail-item {aspect-ratio: auto; height: auto}
#evaluate-panels .thumbnail-item img {height: auto}
#evaluate-panels .grid-wrap {padding-top: 36px}
#evaluate-table *, #jobs-findings *, #jobs-counts * {font-family: var(--font)}
#evaluate-table th * {word-break: normal; overflow-wrap: normal}
"""
HEADER = """## drywall-qa · promptable segmentation for drywall QA
**Inspect** a photo with prompts such as *segment crack* or *segment taping area*, **Review** predictions against a
labelled split, **Evaluate** a whole split, run a **Job** over a site visit's photos."""


@dataclass
class AppConfig:
    """What ``python app.py`` is started with."""

    model: str | None = "lite"
    roots: list[Path] = field(default_factory=data_roots)
    out_dir: Path = Path("outputs")
    device: str | None = None
    #: CPU threads per model call, both engines (None: half the cores, :func:`~drywall_qa.core.engine.default_threads`)
    threads: int | None = MODEL_THREADS
    #: what runs the models: auto, torch or onnxruntime (:mod:`drywall_qa.core.engine`)
    engine: str = "auto"
    #: folders whose checkpoints clients may load (besides the aliases and ``model``)
    models_dirs: list[Path] = field(default_factory=lambda: [Path("runs")])
    #: memory for all sessions' Inspect runs kept for re-rendering
    state_mb: float = DEFAULT_BUDGET_MB
    #: evaluation folders kept in ``out_dir``
    retention: Retention = field(default_factory=Retention)
    #: proxies (addresses or networks) whose ``X-Forwarded-For`` names the client; nobody's when empty
    trusted_proxies: list[str] = field(default_factory=list)


def example_images(roots: Sequence[Path], per_split: int = EXAMPLES_PER_SPLIT) -> list[str]:
    """The generated demo images, then the first images of each split found in the data roots (splits opened
    through the app's split cache, so start-up reads each annotation file once)."""
    found = sorted(str(p) for p in EXAMPLES_DIR.glob("*.png")) if EXAMPLES_DIR else []
    for _, value in discover_splits(roots):
        try:
            split = open_split(value, roots)
            found += [str(split.image_path(i)) for i in range(min(per_split, len(split)))
                      if split.image_path(i).is_file()]
        except Exception:  # noqa: BLE001 — a broken split must not stop the app; Review reports it
            continue
    return found


class ModelBox:
    """The model picker shared by all tabs; the loaded model's cache key lives in a ``gr.State``. Clients may load
    only what it offers: the aliases, the startup model, and checkpoint folders inside ``models_dirs``."""

    def __init__(self, models: ModelCache, startup: str | None, models_dirs: Sequence[Path] = ()) -> None:
        self.models, self.startup, self.models_dirs = models, startup, list(models_dirs)
        self.choices = model_choices(startup, self.models_dirs)
        self.offered = {value for _, value in self.choices}

    def load(self, choice: str | None, folder: str | None, current: str | None) -> tuple[str, str | None]:
        """``(status, key)``: the new model, or the message and the previous model when it cannot be loaded."""
        try:
            if choice and choice not in self.offered:
                raise InputError("model", f"{choice[:80]!r} is not offered by this server", "pick one in the model box")
            key = model_key(choice, folder, self.models_dirs)
            return self.models.get(key).describe(), key
        except Exception as err:  # noqa: BLE001 — shown in the model box
            still = f"\n\nStill using {escape_md(self.label(current))}." if current else ""
            return error_message(err) + still, current

    def label(self, key: str | None) -> str:
        """How the model behind ``key`` is named in the box (a choice's label, not a server path)."""
        return next((label for label, value in self.choices if value == key), Path(key or "none").name)

    def choose(self, choice: str | None, current: str | None) -> tuple:
        """Dropdown changed: show the folder box, or load the chosen model; ``(dropdown, folder box, status,
        key)`` — the dropdown goes back to the model still in use when the chosen one cannot be loaded."""
        if choice == FOLDER:
            return gr.skip(), gr.update(visible=True), "Type a checkpoint folder and press **Load**.", current
        status, key = self.load(choice, None, current)
        shown = choice if key != current or key == choice else self._value(current)
        return gr.update(value=shown), gr.update(visible=False), status, key

    def compare_choices(self) -> list[tuple[str, str]]:
        """The models Review may score beside the loaded one: the box's choices but a typed folder."""
        return [(label, value) for label, value in self.choices if value != FOLDER]

    def _value(self, key: str | None) -> str | None:
        """The dropdown value showing ``key``: its own choice, or the folder choice for a typed folder."""
        return key if key in self.offered or key is None else FOLDER

    def build(self) -> gr.State:
        status, key = self.load(self.startup, None, None) if self.startup else ("Choose a model.", None)
        with gr.Row():
            choice = gr.Dropdown(self.choices, value=self.startup, label="Model", scale=2)
            folder = gr.Textbox(label="Checkpoint folder", visible=False, scale=2,
                                placeholder="e.g. runs/lite/best (written by drywall-qa train)")
            with gr.Column(scale=3):
                info = gr.Markdown(status, elem_id="model-status")
                load = gr.Button("Load", size="sm", min_width=90)
        current = gr.State(key)
        choice.input(self.choose, [choice, current], [choice, folder, info, current], concurrency_id="load",
                     api_visibility="private")
        gr.on([load.click, folder.submit], self.load, [choice, folder, current], [info, current],
              concurrency_id="load", api_name="load_model")
        return current


def build_app(config: AppConfig) -> gr.Blocks:
    """The whole UI; the startup model is loaded here (and never evicted) so the first request is not slow. Leftovers
    of writes killed in an earlier run are removed from the output folder."""
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS      # gradio's own decoders refuse bombs too, not only load_image
    hide_server_paths([*config.roots, config.out_dir, *config.models_dirs, CODE_DIR, *filter(None, [EXAMPLES_DIR]),
                       tempfile.gettempdir()])
    prune_leftovers(config.out_dir)
    models, lane = ModelCache(config.device, engine=config.engine), HeavyLane()
    startup = startup_choice(config.model)
    if startup:
        models.pinned.add(startup)
    with gr.Blocks(title="drywall-qa", delete_cache=(1800, 3600)) as demo:
        gr.Markdown(HEADER)
        box = ModelBox(models, startup, config.models_dirs)
        key = box.build()
        with gr.Tabs():
            for title, tab in [("Inspect", InspectTab(models, example_images(config.roots), config.roots,
                                                      ResultStore(config.state_mb))),
                               ("Review", ReviewTab(models, config.roots, config.out_dir, lane=lane,
                                                    compare_choices=box.compare_choices())),
                               ("Evaluate", EvaluateTab(models, config.roots, config.out_dir, lane=lane,
                                                        retention=config.retention)),
                               ("Jobs", JobsTab(models, config.out_dir, lane=lane, retention=config.retention))]:
                with gr.Tab(title, id=title.lower(), elem_id=f"tab-{title.lower()}"):
                    tab.build(key)
    return demo


def launch(demo: gr.Blocks, config: AppConfig, host: str | None = None, port: int | None = None, **kwargs):
    """Queue (bounded, ``CONCURRENCY`` per event group) and serve; ``host``/``port`` None use gradio's defaults
    (``GRADIO_SERVER_NAME``/``GRADIO_SERVER_PORT``, else 127.0.0.1:7860), which is what Spaces sets. Besides the
    output folder, gradio may serve the example images one by one (not the data folders they come from)."""
    set_threads(config.threads)
    trust_proxies(config.trusted_proxies)
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    served = [str(Path(config.out_dir).resolve()), *(str(Path(e).resolve()) for e in example_images(config.roots))]
    return demo.launch(server_name=host, server_port=port, max_file_size=MAX_FILE_SIZE, show_error=True,
                       allowed_paths=served, theme=gr.themes.Soft(), css=CSS, js=KEYS_JS,
                       footer_links=["gradio", "settings"], **kwargs)


def serve(config: AppConfig, host: str | None = None, port: int | None = None) -> None:
    """Build the app ``config`` describes and serve it until interrupted."""
    demo = build_app(config)
    # quiet: gradio's start-up lines end with a hint about share=True, an option this app does not offer
    launch(demo, config, host=host, port=port, quiet=True, prevent_thread_lock=True)
    print(f"drywall-qa app on {demo.local_url} (Ctrl+C to stop)", flush=True)
    demo.block_thread()
