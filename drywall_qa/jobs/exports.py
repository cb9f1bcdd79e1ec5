"""A job's exports, built from its photo records and written atomically into the job folder:

* ``findings.csv``: one row per instance (photo, prompt, instance, measurements in the job's unit, score);
* ``photos.coco.json``: the photos and one category per prompt, as a COCO dataset without annotations;
* ``predictions.coco.json``: COCO *results*, one RLE per instance with its ``category_id`` and ``score``, so
  ``COCO("photos.coco.json").loadRes("predictions.coco.json")`` loads them (pycocotools refuses an empty results
  list, which a job with no finding writes);
* ``summary.json``: photos, instances per prompt and width band, unreadable photos with the reason.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from drywall_qa.core.atomic import write_atomic
from drywall_qa.jobs.findings import BAND_NAMES
from drywall_qa.jobs.runner import JobSettings
from drywall_qa.jobs.sources import Refused

FINDINGS_CSV, PHOTOS_COCO, PREDICTIONS_COCO, SUMMARY = (
    "findings.csv", "photos.coco.json", "predictions.coco.json", "summary.json")
MEASURES = ("area", "length", "mean_width", "max_width")
COLUMNS = ("photo", "prompt", "instance", "unit", *MEASURES, "width_band", "orientation_deg", "score",
           "bbox_x", "bbox_y", "bbox_w", "bbox_h")


def measured(records: Sequence[dict]) -> list[dict]:
    """The records of photos that were read (not the unreadable ones)."""
    return [record for record in records if "error" not in record]


def findings_rows(records: Sequence[dict], settings: JobSettings) -> list[dict]:
    """One row per instance, in :data:`COLUMNS` (numbers rounded for reading)."""
    rows = []
    for record in measured(records):
        for entry in record["prompts"]:
            for finding in entry["findings"]:
                rows.append({"photo": record["name"], "prompt": entry["prompt"], "instance": finding["instance"],
                             "unit": settings.measure.unit,
                             **{m: _rounded(finding[m]) for m in MEASURES}, "width_band": finding["band"] or "",
                             "orientation_deg": round(finding["orientation"], 1),
                             "score": round(finding["score"], 4),
                             **dict(zip(("bbox_x", "bbox_y", "bbox_w", "bbox_h"), finding["bbox"]))})
    return rows


def _rounded(value: float | None) -> float | str:
    return "" if value is None else round(value, 3)


def coco_photos(records: Sequence[dict], settings: JobSettings) -> dict:
    """The photos read (ids from 1 in job order) and one category per prompt (ids from 1 in prompt order)."""
    images = [{"id": i, "file_name": record["name"], "width": record["width"], "height": record["height"]}
              for i, record in enumerate(measured(records), start=1)]
    categories = [{"id": i, "name": prompt} for i, prompt in enumerate(settings.prompts, start=1)]
    return {"info": {"description": "drywall-qa inspection job", "model": settings.model}, "images": images,
            "annotations": [], "categories": categories}


def coco_results(records: Sequence[dict], settings: JobSettings) -> list[dict]:
    """COCO results: one per instance, with :func:`coco_photos`' image and category ids."""
    category = {prompt: i for i, prompt in enumerate(settings.prompts, start=1)}
    return [{"image_id": image_id, "category_id": category[entry["prompt"]], "segmentation": finding["segmentation"],
             "score": finding["score"], "bbox": finding["bbox"]}
            for image_id, record in enumerate(measured(records), start=1)
            for entry in record["prompts"] for finding in entry["findings"]]


def summary(records: Sequence[dict], settings: JobSettings, refused: Sequence[Refused]) -> dict:
    """Counts for the report's head: photos, instances per prompt and per prompt and width band, problems."""
    read = measured(records)
    per_prompt = Counter({prompt: 0 for prompt in settings.prompts})
    bands: dict[str, Counter] = {prompt: Counter({band: 0 for band in BAND_NAMES}) for prompt in settings.prompts}
    for record in read:
        for entry in record["prompts"]:
            per_prompt[entry["prompt"]] += len(entry["findings"])
            bands[entry["prompt"]].update(f["band"] for f in entry["findings"] if f["band"])
    problems = [{"photo": r["name"], "reason": r["error"]} for r in records if "error" in r]
    problems += [{"photo": r.name, "reason": r.reason} for r in refused]
    return {"settings": settings.to_dict(), "photos": len(records) + len(refused), "measured": len(read),
            "unreadable": problems, "instances": dict(per_prompt), "bands": {p: dict(c) for p, c in bands.items()}}


def write_exports(folder: Path, records: Sequence[dict], settings: JobSettings, refused: Sequence[Refused]) -> dict:
    """Write the CSV, COCO and summary files; return the summary."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(findings_rows(records, settings))
    write_atomic(folder / FINDINGS_CSV, buffer.getvalue())
    write_atomic(folder / PHOTOS_COCO, json.dumps(coco_photos(records, settings)) + "\n")
    write_atomic(folder / PREDICTIONS_COCO, json.dumps(coco_results(records, settings)) + "\n")
    counts = summary(records, settings, refused)
    write_atomic(folder / SUMMARY, json.dumps(counts, indent=2) + "\n")
    return counts
