"""Run an inspection job: photos (files, folders, globs, .zip archives) × prompts → per-photo masks, overlays and
findings, then findings.csv, COCO files, report.html and report.pdf in the job folder (see :mod:`drywall_qa.jobs`).

Re-running on the same ``--out`` resumes: photos already done are skipped. ``accelerate launch -m
drywall_qa.cli.job …`` (or ``torchrun``) shares the photos between processes; the main one writes the exports.

    drywall-qa job site/*.jpg walls.zip --prompts "segment crack" "segment taping area" --out job1
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tqdm import tqdm

from drywall_qa.cli.args import (
    add_model_arguments,
    count_arg,
    description,
    engine_from_args,
    folder_arg,
    positive_float_arg,
)
from drywall_qa.core.errors import InputError, ModelLoadError
from drywall_qa.core.imaging import short_path
from drywall_qa.core.segmenter import Segmenter, clean_prompt, select_device
from drywall_qa.jobs import Job, JobSettings, collect, finish
from drywall_qa.jobs.findings import DEFAULT_MIN_AREA, MM_BANDS, PX_BANDS, MeasureSettings
from drywall_qa.jobs.report import REPORT
from drywall_qa.jobs.report_pdf import PDF

PROG = "drywall-qa job"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=description(__doc__))
    parser.add_argument("photos", nargs="+", help="image files, folders, glob patterns or .zip archives")
    parser.add_argument("--prompts", nargs="+", required=True, help="text prompts, e.g. 'segment crack'")
    parser.add_argument("--out", required=True, type=folder_arg, help="job folder (new, or a job's to resume)")
    parser.add_argument("--mm-per-pixel", type=positive_float_arg,
                        help="scale of the photos: measurements in millimetres instead of pixels")
    parser.add_argument("--min-area", type=count_arg(1), default=DEFAULT_MIN_AREA,
                        help=f"smallest instance in pixels (default {DEFAULT_MIN_AREA})")
    parser.add_argument("--width-bands", type=positive_float_arg, nargs=3, metavar=("HAIRLINE", "FINE", "MEDIUM"),
                        help=f"upper width limits of the bands, in mm with a scale (default {MM_BANDS}), else in "
                        f"pixels (default {PX_BANDS})")
    add_model_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from accelerate import PartialState

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        device = select_device(args.device)
    except InputError as err:
        parser.error(str(err))
    state = PartialState(cpu=device.type == "cpu")  # processes on one CPU machine share the work over gloo
    try:
        measure = MeasureSettings(args.min_area, args.mm_per_pixel,
                                  tuple(args.width_bands) if args.width_bands else None)
    except ValueError as err:
        parser.error(str(err))
    photos, refused = collect(args.photos, skip=args.out)           # a resumed job's own outputs are no photos
    if not photos:
        problems = "; ".join(f"{r.name}: {r.reason}" for r in refused)
        print(f"{PROG}: error: no photos found ({problems})", file=sys.stderr)
        return 2
    try:
        segmenter = Segmenter.load(args.model, str(state.device) if state.num_processes > 1 else str(device),
                                   engine_from_args(args))
        prompts = tuple(clean_prompt(p) for p in args.prompts)
        settings = JobSettings(prompts, segmenter.name, args.threshold, args.tiling, measure)
        with state.main_process_first():
            job = Job.open(args.out, settings, clean=state.is_main_process)
    except (InputError, ModelLoadError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    _run_shard(job, segmenter, photos, state)
    state.wait_for_everyone()
    if not state.is_main_process:
        return 0
    counts = finish(job, photos, refused).summary
    for problem in counts["unreadable"]:
        print(f"{PROG}: skipped {problem['photo']}: {problem['reason']}", file=sys.stderr)
    found = ", ".join(f"{prompt}: {n}" for prompt, n in counts["instances"].items())
    print(f"{counts['measured']} of {counts['photos']} photos measured ({found}); report in "
          f"{short_path(args.out / REPORT)} and {PDF}")
    return 0


def _run_shard(job: Job, segmenter: Segmenter, photos: list, state) -> None:
    """Run the photos not done yet of this process's share (the same shares in every process, whatever the others
    have done), with a progress bar on the main process."""
    pending = job.pending(photos)
    if state.is_main_process:
        print(f"{len(photos)} photos: {len(photos) - len(pending)} done earlier, {len(pending)} to run"
              + (f" on {state.num_processes} processes" if state.num_processes > 1 else ""), file=sys.stderr)
    with state.split_between_processes(photos) as share:
        todo = job.pending(share)
        bar = tqdm(total=len(share), initial=len(share) - len(todo), unit="photo", desc="photos",
                   disable=not state.is_main_process, file=sys.stderr)
        with bar:
            job.run(segmenter, todo, progress=lambda done, total: bar.update(1))


if __name__ == "__main__":
    sys.exit(main())
