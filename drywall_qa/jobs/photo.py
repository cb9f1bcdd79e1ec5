"""One photo of a job: predict every prompt, measure the masks, write the masks, the overlay and the photo's
record. The record is written last and atomically, so its presence means the photo is done."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pycocotools import mask as mask_utils
from scipy import ndimage

from drywall_qa.atomic import write_atomic
from drywall_qa.evaluation import write_png
from drywall_qa.file_names import safe_name
from drywall_qa.findings import Finding, MeasureSettings, find_instances, measure
from drywall_qa.prediction import Prediction
from drywall_qa.visualisation import RGB, palette
from drywall_qa.visualisation import overlay as blend

MASKS, OVERLAYS = "masks", "overlays"
OVERLAY_QUALITY = 85
#: box outline width and label size on overlays, per 1000 pixels of the photo's longer side
BOX_WIDTH, LABEL_SIZE = 2, 24


def instance_rles(labels: np.ndarray, count: int) -> list[dict]:
    """COCO RLE (``counts`` as text) of each instance ``1..count`` of a label image."""
    canvas = np.zeros(labels.shape, np.uint8, order="F")
    rles = []
    for instance, where in enumerate(ndimage.find_objects(labels, max_label=count), start=1):
        canvas[where] = labels[where] == instance
        rle = mask_utils.encode(canvas)
        canvas[where] = 0
        rles.append({"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")})
    return rles


def prompt_record(prediction: Prediction, index: int, key: str, folder: Path,
                  settings: MeasureSettings) -> tuple[dict, list[Finding]]:
    """Measure one prompt's prediction and write its mask; the record's entry for it and its findings."""
    instances = find_instances(prediction.mask, settings)
    findings = measure(prediction.mask, prediction.probabilities, settings, instances)
    mask_file = f"{MASKS}/{key}__{index:02d}_{safe_name(prediction.prompt, 'prompt')}.png"
    write_png(folder / mask_file, prediction.mask.astype(np.uint8) * 255)
    records = [{**finding.to_dict(), "segmentation": rle}
               for finding, rle in zip(findings, instance_rles(instances.labels, instances.count))]
    return {"prompt": prediction.prompt, "threshold": prediction.threshold, "presence": prediction.presence,
            "coverage": prediction.coverage, "view": prediction.view, "unknown_concept": prediction.unknown_concept,
            "mask": mask_file, "specks": instances.specks, "findings": records}, findings


def annotated_overlay(image: np.ndarray, predictions: Sequence[Prediction],
                      findings: Sequence[Sequence[Finding]]) -> np.ndarray:
    """The photo with each prompt's mask blended in its colour, and each finding boxed and numbered."""
    colours = palette(len(predictions))
    picture = Image.fromarray(blend(image, [p.mask for p in predictions], colours, alpha=0.45))
    draw = ImageDraw.Draw(picture)
    scale = max(image.shape[:2]) / 1000
    width = max(1, round(BOX_WIDTH * scale))
    font = ImageFont.load_default(size=max(10, round(LABEL_SIZE * scale)))
    for colour, prompt_findings in zip(colours, findings):
        for finding in prompt_findings:
            _box(draw, finding, colour, width, font)
    return np.asarray(picture)


def _box(draw: ImageDraw.ImageDraw, finding: Finding, colour: RGB, width: int, font: ImageFont.ImageFont) -> None:
    x, y, w, h = finding.bbox
    draw.rectangle((x - width, y - width, x + w + width - 1, y + h + width - 1), outline=colour, width=width)
    draw.text((x, max(0, y - width)), str(finding.instance), fill=colour, font=font, anchor="lb",
              stroke_width=max(1, width // 2), stroke_fill=(0, 0, 0))


def write_jpeg(path: Path, rgb: np.ndarray, quality: int = OVERLAY_QUALITY) -> None:
    """Save an RGB array as a JPEG with :func:`write_atomic`."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    write_atomic(path, buffer.getvalue())
