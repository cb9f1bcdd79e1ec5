"""``train/recipe.sh``, the bundled model's whole recipe as one script, in a smoke run on the real data: each stage
trains from the one before with its own settings, the result runs at 480 px and is calibrated, and a second run
resumes finished stages instead of training them again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from drywall_qa.core.backends import load_backend
from drywall_qa.data.coco import DATASETS
from drywall_qa.training.history import read_history

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ["--limit", "8", "--epochs", "1", "--samples-per-epoch", "8", "--batch-size", "4"]
#: what each stage must train from, and settings of its own that the smoke arguments do not override
STAGES = {
    "lite-1": ("lite", {"balance": True, "image_size": 384, "lr": 1e-3, "seed": 0, "overlay": 0.0}),
    "lite-2": ("lite-1/best", {"balance": False, "lr": 3e-4, "seed": 1, "overlay": 0.0}),
    "lite-3": ("lite-2/best", {"overlay": 0.5, "seed": 5}),
    "lite-4": ("lite-3/last", {"overlay": 0.5, "image_size": 512, "crop_scale": [0.4, 0.6], "seed": 7}),
}


def run_recipe(data_root: Path, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CALIBRATE_ARGS": "--limit 4",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", str(ROOT / "train" / "recipe.sh"), str(data_root), str(out), *SMOKE],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def test_the_recipe_runs_every_stage_then_calibrates_and_resumes(data_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "recipe"
    first = run_recipe(data_root, out)
    assert first.returncode == 0, first.stderr[-2000:]
    for stage, (start, settings) in STAGES.items():
        args = json.loads((out / stage / "training_args.json").read_text())
        assert args["model"] == (start if start == "lite" else str(out / start))
        assert {key: args[key] for key in settings} == settings, stage
        assert args["limit"] == 8 and args["epochs"] == 1 and len(read_history(out / stage)) == 1
    model = out / "lite-4" / "last"
    backend = load_backend(model, "cpu")
    assert backend.input_size == 480
    prompts = {p for spec in DATASETS.values() for p in spec.prompts}
    assert set(backend.settings.thresholds) == set(backend.settings.scales) == prompts
    weights = (model / "model.safetensors").read_bytes()
    again = run_recipe(data_root, out)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (model / "model.safetensors").read_bytes() == weights
    assert all(len(read_history(out / stage)) == 1 for stage in STAGES)
