"""What choosing among checkpoints on a validation split costs.

    drywall-qa selection --models drywall_qa/weights/drywall-qa-lite runs/a/last --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from drywall_qa.calibration.calibrate import collect
from drywall_qa.calibration.selection import PROG, selection_cost
from drywall_qa.cli.args import add_engine_arguments, count_arg, description, engine_from_args, path_arg
from drywall_qa.core.errors import InputError, ModelLoadError
from drywall_qa.core.segmenter import Segmenter
from drywall_qa.data.coco import DATASETS, CocoSplit, data_root, split_dir


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
