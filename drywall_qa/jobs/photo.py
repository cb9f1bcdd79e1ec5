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

from drywall_qa.core.atomic import write_atomic
from drywall_qa.core.file_names import safe_name
from drywall_qa.core.imaging import write_png
from drywall_qa.core.prediction import Prediction
from drywall_qa.core.visualisation import overlay as blend
from drywall_qa.core.visualisation import palette
from drywall_qa.jobs.findings import Finding, MeasureSettings, find_instances, measure
from drywall_qa.jobs.labels import place_labels

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
    return {**prediction.to_dict(), "mask": mask_file, "specks": instances.specks, "findings": records}, findings


def annotated_overlay(image: np.ndarray, predictions: Sequence[Prediction],
                      findings: Sequence[Sequence[Finding]]) -> np.ndarray:
    """The photo with each prompt's mask blended in its colour, and each finding boxed and numbered (the numbers
    placed by :func:`~drywall_qa.jobs.labels.place_labels`, clear of each other)."""
    colours = palette(len(predictions))
    picture = Image.fromarray(blend(image, [p.mask for p in predictions], colours, alpha=0.45))
    draw = ImageDraw.Draw(picture)
    scale = max(image.shape[:2]) / 1000
    width = max(1, round(BOX_WIDTH * scale))
    font = ImageFont.load_default(size=max(10, round(LABEL_SIZE * scale)))
    stroke = max(1, width // 2)
    drawn = [(colour, finding) for colour, prompt_findings in zip(colours, findings) for finding in prompt_findings]
    texts = [str(finding.instance) for _, finding in drawn]
    sizes = [_text_size(draw, text, font, stroke) for text in texts]
    corners = place_labels([_outer_box(f.bbox, width) for _, f in drawn], sizes, picture.size, gap=width)
    for (colour, finding), text, corner in zip(drawn, texts, corners):
        x, y, w, h = _outer_box(finding.bbox, width)
        draw.rectangle((x, y, x + w - 1, y + h - 1), outline=colour, width=width)
        draw.text((corner[0] + stroke, corner[1] + stroke), text, fill=colour, font=font, anchor="lt",
                  stroke_width=stroke, stroke_fill=(0, 0, 0))
    return np.asarray(picture)


def _outer_box(bbox: Sequence[int], width: int) -> tuple[int, int, int, int]:
    """A finding's box grown by the outline's ``width``, so that the outline leaves the instance's pixels clear."""
    x, y, w, h = bbox
    return x - width, y - width, w + 2 * width, h + 2 * width


def _text_size(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
               stroke: int) -> tuple[int, int]:
    """Width and height a label takes, its outline included."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font, anchor="lt")
    return int(right - left) + 2 * stroke, int(bottom - top) + 2 * stroke


def write_jpeg(path: Path, rgb: np.ndarray, quality: int = OVERLAY_QUALITY) -> None:
    """Save an RGB array as a JPEG with :func:`write_atomic`."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    write_atomic(path, buffer.getvalue())
