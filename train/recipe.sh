#!/usr/bin/env bash
# The bundled drywall-qa-lite recipe end to end (model card, "Procedure"): four training stages, the 480 px input,
# then calibration. One prepared script for a GPU machine or for resumed CPU sittings: every stage runs with
# --resume, so running the script again continues where it stopped and skips finished training stages (the
# calibration at the end runs again: about 15 minutes on 2 CPU cores).
#
#   bash train/recipe.sh DATA_ROOT OUT_DIR [extra train arguments]
#   bash train/recipe.sh ../shared/data runs/recipe --mixed-precision fp16      # on a GPU
#
# Extra arguments follow each stage's own, so they override them (a smoke run: --limit 8 --epochs 1);
# --lite-encoder efficientnet-lite2 sets stage 1's encoder (the later stages start from a checkpoint and ignore it).
# CALIBRATE_ARGS (e.g. "--limit 8") goes to the calibration. The model is OUT_DIR/lite-4/last.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: bash train/recipe.sh DATA_ROOT OUT_DIR [extra train arguments]" >&2
    exit 2
fi
data=$1 out=$2
shift 2
common=(--dataset both --data-root "$data" --prompts all --negatives 0.35 --samples-per-epoch 3000
        --batch-size 16 --loss bce+dice --train-size 256 --resume)

python -m drywall_qa train --model lite --output-dir "$out/lite-1" "${common[@]}" --balance --epochs 12 --lr 1e-3 \
    --image-size 384 --seed 0 "$@"
python -m drywall_qa train --model "$out/lite-1/best" --output-dir "$out/lite-2" "${common[@]}" --epochs 6 --lr 3e-4 \
    --seed 1 "$@"
python -m drywall_qa train --model "$out/lite-2/best" --output-dir "$out/lite-3" "${common[@]}" --overlay 0.5 --epochs 4 \
    --lr 3e-4 --seed 5 "$@"
python -m drywall_qa train --model "$out/lite-3/last" --output-dir "$out/lite-4" "${common[@]}" --overlay 0.5 --epochs 5 \
    --lr 3e-4 --image-size 512 --crop-scale 0.4 0.6 --seed 7 "$@"

python - "$out/lite-4/last/config.json" <<'EOF'
import json, sys
path = sys.argv[1]
config = json.load(open(path))
config["image_size"] = 480  # trained at 512 px; 480 keeps within 30 ms per image per prompt on 2 CPU cores
json.dump(config, open(path, "w"), indent=2)
EOF
# shellcheck disable=SC2086  # CALIBRATE_ARGS is a list of arguments
python -m drywall_qa calibrate --model "$out/lite-4/last" --data-root "$data" ${CALIBRATE_ARGS:-}
