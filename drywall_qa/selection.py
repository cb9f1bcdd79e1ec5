"""What choosing among checkpoints on a validation split costs: ``python -m drywall_qa.selection``.

Choosing a checkpoint (a recipe, an epoch), an output shape and a threshold on the split that reports the score
flatters it. For every registered prompt this scores each checkpoint's raw probabilities over every shape and
threshold (as :mod:`drywall_qa.calibrate` does for one checkpoint) and reports:

* per checkpoint, its best mIoU on the whole split (what choosing on it reports);
* the best of all of them, the joint choice of checkpoint, shape and threshold;
* the held-out mIoU of that joint choice (:func:`~drywall_qa.calibrate.held_out_score`): made on one half of the
  source photos, scored on the other, over repeated random halvings. The difference is the selection cost.

    python -m drywall_qa.selection --models drywall_qa/weights/drywall-qa-lite runs/a/last --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from drywall_qa.calibrate import collect, held_out_score
from drywall_qa.cli_args import add_engine_arguments, count_arg, description, engine_from_args, path_arg
from drywall_qa.data import DATASETS, CocoSplit, data_root, split_dir
from drywall_qa.errors import InputError, ModelLoadError
from drywall_qa.metrics import ThresholdSweep
from drywall_qa.segmenter import Segmenter

PROG = "python -m drywall_qa.selection"


def selection_cost(sweeps: Mapping[str, Mapping[str, ThresholdSweep]],
                   groups: Sequence[str] | None = None) -> dict[str, object]:
    """For one prompt, ``sweeps`` (checkpoint → shape → sweep over the same images, in the same order): each
    checkpoint's best mIoU, the joint choice's checkpoint and mIoU, and its held-out mIoU."""
    per_model = {name: np.stack([s.per_image_iou() for s in by_shape.values()], axis=1)
                 for name, by_shape in sweeps.items()}  # images × shapes × thresholds
    best = {name: float(ious.mean(axis=0).max()) for name, ious in per_model.items()}
    chosen = max(best, key=best.get)
    options = np.concatenate([ious.reshape(len(ious), -1) for ious in per_model.values()], axis=1)
    return {"best_miou": best, "chosen": chosen, "chosen_miou": best[chosen],
            "held_out_miou": held_out_score(options, groups)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=description(__doc__))
    parser.add_argument("--models", required=True, nargs="+", type=path_arg, help="checkpoint folders to choose among")
    parser.add_argument("--data-root", type=path_arg, help="folder holding the datasets (default: $DRYWALL_QA_DATA, "
                        "./data or ../shared/data)")
    parser.add_argument("--split", default="valid", help="split name in every dataset (default valid)")
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=sorted(DATASETS))
    parser.add_argument("--limit", type=count_arg(1), help="first N images of each dataset")
    add_engine_arguments(parser)
    args = parser.parse_args(argv)
    try:
        root = data_root(args.data_root)
        splits = {name: CocoSplit(split_dir(root, name, args.split)) for name in dict.fromkeys(args.datasets)}
        engine = engine_from_args(args)
        records = {str(model): collect(Segmenter.load(model, engine=engine), splits, args.limit)
                   for model in args.models}
    except (InputError, ModelLoadError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    first = next(iter(records.values()))
    names = {str(m): Path(m).name if Path(m).name not in ("best", "last") else "/".join(Path(m).parts[-2:])
             for m in args.models}
    print(f"{'prompt':<24} " + " ".join(f"{names[m][:14]:>14}" for m in records) + "  chosen  held-out  cost")
    for prompt in first.sweeps:
        cost = selection_cost({m: r.sweeps[prompt] for m, r in records.items()}, first.groups[prompt])
        cells = " ".join(f"{cost['best_miou'][m]:14.3f}" for m in records)
        print(f"{prompt[:24]:<24} {cells}  {cost['chosen_miou']:6.3f}  {cost['held_out_miou']:8.3f}  "
              f"{cost['chosen_miou'] - cost['held_out_miou']:4.3f}  ({names[cost['chosen']]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
