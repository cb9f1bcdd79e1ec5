r"""Export a reviewed split: the original COCO split with the review decisions applied, as a new split folder.

    drywall-qa review export --decisions reviews/cracks-valid.json --split ../shared/data/cracks/valid \
        --out corrected/cracks/valid

``drywall-qa evaluate --split corrected/cracks/valid`` reads the result as is. ``drywall-qa train
--data-root corrected`` wants both splits of a dataset's folder (``cracks``, ``drywall-join-detect``) under it:
export the other split there too (a decisions file with no images, ``{"version": 2, "images": {}}``, copies a split
unchanged).
"""

from __future__ import annotations

import argparse
import sys

from drywall_qa.cli.args import description, path_arg
from drywall_qa.core.errors import InputError
from drywall_qa.review.export import export_split

PROG = "drywall-qa review"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=description(__doc__))
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write the corrected split", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    export.add_argument("--decisions", required=True, type=path_arg, help="the review's decisions file (JSON)")
    export.add_argument("--split", required=True, type=path_arg,
                        help="the split folder the decisions were made on (holding _annotations.coco.json)")
    export.add_argument("--out", required=True, type=path_arg, help="the new split folder; must not exist yet")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        summary = export_split(args.decisions, args.split, args.out)
    except InputError as err:
        print(f"{PROG} {args.command}: error: {err}", file=sys.stderr)
        return 2
    print(f"{summary.images} images written to {summary.out}: {summary.corrected} with corrected ground truth, "
          f"{summary.excluded} excluded; decisions.csv lists every decision")
    if summary.unfixed:
        print(f"note: {summary.unfixed} images marked ground_truth_wrong have no corrected mask and keep their "
              "annotations: add a mask or exclude them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
