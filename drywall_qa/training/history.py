"""Per-epoch training history: appended to ``history.jsonl`` and drawn to ``curves.png``."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HISTORY_FILE = "history.jsonl"
CURVES_FILE = "curves.png"


def read_history(directory: Path) -> list[dict]:
    path = directory / HISTORY_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_history(directory: Path, record: dict) -> None:
    with open(directory / HISTORY_FILE, "a") as handle:
        handle.write(json.dumps(record) + "\n")


def truncate_history(directory: Path, epochs: int) -> None:
    """Keep the records of the first ``epochs`` epochs (a resumed run redoes any epoch after its checkpoint)."""
    records = [r for r in read_history(directory) if r["epoch"] < epochs]
    (directory / HISTORY_FILE).write_text("".join(json.dumps(r) + "\n" for r in records))


def plot_curves(directory: Path) -> Path:
    """Train loss, and per prompt validation loss, mIoU and Dice against the epoch."""
    history = read_history(directory)
    epochs = [r["epoch"] for r in history]
    fig, axes = plt.subplots(1, 4, figsize=(18, 4))
    axes[0].plot(epochs, [r["train_loss"] for r in history], marker="o", label="train")
    for dataset, block in history[-1]["valid"].items():
        for prompt in block["prompts"]:
            for ax, key in zip(axes[1:], ("loss", "miou", "dice")):
                values = [r["valid"][dataset]["prompts"][prompt][key] for r in history]
                ax.plot(epochs, values, marker=".", label=f"{dataset}: {prompt}")
    for ax, title in zip(axes, ("train loss", "valid loss", "valid mIoU", "valid Dice")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path = directory / CURVES_FILE
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
