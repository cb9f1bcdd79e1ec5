"""``bench.hostile``'s cases for serving many clients (issue 27): a small request beside large ones, forged
forwarded headers, what refused and failed jobs leave on disk, and the hand-edited files and values that used to
give tracebacks. Each case takes the running :class:`~bench.hostile.World` and returns its verdict line."""

from __future__ import annotations

import io
import json
import shutil
import threading
import time
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
from PIL import Image

from bench.clients import Client, MemoryMonitor, Request
from bench.fairness import tiled_photo
from bench.hostile import TIMEOUT_S, World, call, cli, one_line_error, raw_call
from drywall_qa.app.models import startup_choice
from drywall_qa.app.prompts import KNOWN_PROMPTS
from drywall_qa.core.backends import BUNDLED_DIR
from drywall_qa.testing.splits import make_split

#: a small request beside large work is answered within this (the tiny model's large work takes seconds, the
#: bundled model's minutes)
SMALL_ANSWER_S = 2.0
EIGHT_TYPED = "segment hole in the wall, segment screw head, segment water stain"
#: job folders planted before start-up, beyond the server's --keep-evaluations 2
OLD_JOBS = 4


def plant(out: Path) -> None:
    """Before start-up: old job folders past the retention, and temp files a killed job write left in one."""
    for number in range(OLD_JOBS):
        job = out / "jobs" / f"2020010{number}-000000-abcdef"
        (job / "photos").mkdir(parents=True)
        (job / "job.json").write_text("{}")
    (out / "jobs" / "20200100-000000-abcdef" / "photos" / ".wall.json.k2.tmp").write_text("{half")
    (out / "jobs" / "20200100-000000-abcdef" / ".notes.json.k3.tmp").write_text("{half")


def _small_beside(world: World, heavy: Callable[[Client], object]) -> tuple[float, str]:
    """Start ``heavy`` from one client, then time a new client's 640 px Inspect; ``(seconds, heavy status)``."""
    job = heavy(world.client())
    time.sleep(1.5)
    outcome = world.client().send(Request(world.photo, ["segment crack"], ""))
    assert outcome.error is None, outcome.error
    result = job.result(timeout=TIMEOUT_S)
    return outcome.seconds, str(result[0] if isinstance(result, (list, tuple)) else result)


def case_small_beside_large_photo(world: World) -> str:
    from gradio_client import handle_file
    wide = tiled_photo(world.photo, world.scratch / "wide.jpg", 4000, 3000)
    seconds, status = _small_beside(world, lambda c: c.client.submit(
        image=handle_file(wide), selected=list(KNOWN_PROMPTS), typed=EIGHT_TYPED, tiling="on", api_name="/segment"))
    assert "8 prompts" in status and seconds <= SMALL_ANSWER_S, f"{seconds:.1f} s; {status[:160]}"
    return f"12 MP × 8 prompts tiled: a new client's /segment in {seconds:.2f} s"


def case_small_beside_job(world: World) -> str:
    from gradio_client import handle_file
    photos = [handle_file(tiled_photo(world.photo, world.scratch / f"job{i}.jpg", 3000, 2000)) for i in range(2)]
    seconds, status = _small_beside(world, lambda c: c.client.submit(
        photos=photos, selected=list(KNOWN_PROMPTS), typed=EIGHT_TYPED, tiling="on", api_name="/run_job"))
    assert "Job done" in status and seconds <= SMALL_ANSWER_S, f"{seconds:.1f} s; {status[:160]}"
    return f"a job of 2 × 6 MP photos × 8 prompts: a new client's /segment in {seconds:.2f} s"


def case_two_large_photos(world: World) -> str:
    from gradio_client import handle_file
    wide = handle_file(tiled_photo(world.photo, world.scratch / "wide2.jpg", 4000, 3000))
    memory = MemoryMonitor(world.server.process.pid)
    before = memory.settled(1.0)
    results: list[str] = []

    def send() -> None:
        results.append(call(world, "/segment", wide, list(KNOWN_PROMPTS), EIGHT_TYPED, True, 0.5, 0.5))
    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT_S)
    peak = memory.stop() - before
    assert len(results) == 2 and all("8 prompts" in r for r in results), [r[:120] for r in results]
    return f"two 12 MP × 8-prompt requests at once: both answered, one predicting at a time; peak RSS +{peak:.0f} MiB"


def case_forwarded_for(world: World) -> str:
    from gradio_client import Client as GradioClient
    from gradio_client import handle_file
    photos = [handle_file(tiled_photo(world.photo, world.scratch / "xff.jpg", 4000, 3000))]
    job = world.client().client.submit(photos=photos, selected=list(KNOWN_PROMPTS), typed=EIGHT_TYPED, tiling="on",
                                       api_name="/run_job")
    time.sleep(1.5)
    statuses: list[str] = []

    def evaluate(number: int) -> None:
        client = GradioClient(world.server.url, verbose=False, download_files=False, analytics_enabled=False,
                              headers={"X-Forwarded-For": f"198.51.100.{number}"})
        statuses.append(str(client.predict(split=world.split(1, "flood/valid"), selected=["segment crack"],
                                           limit=12, panels=0, api_name="/evaluate")[0]))
    threads = [threading.Thread(target=evaluate, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT_S)
    job.result(timeout=TIMEOUT_S)
    refused = sum("this client already has" in s for s in statuses)
    assert len(statuses) == 6 and refused == 6, [s[:80] for s in statuses]
    return ("a job from loopback, then 6 heavy requests from loopback each claiming another X-Forwarded-For: "
            "all 6 refused (one place per address)")


def _zip(path: Path, members: list[tuple[str, bytes]]) -> str:
    """A zip of ``members``; a name given twice is written twice (on purpose, without zipfile's warning)."""
    with zipfile.ZipFile(path, "w") as archive, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Duplicate name", UserWarning)
        for name, data in members:
            archive.writestr(name, data)
    return str(path)


def _jpeg(side: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (200, 198, 190)).save(buffer, "JPEG")
    return buffer.getvalue()


def case_refused_job_leaves_nothing(world: World) -> str:
    from gradio_client import handle_file
    jobs = world.out / "jobs"
    leftovers = list(jobs.rglob("*.tmp"))
    assert not leftovers, f"temp files left in job folders: {leftovers}"
    many = _zip(world.scratch / "many.zip", [(f"p{i}.jpg", _jpeg(8)) for i in range(501)])
    status = call(world, "/run_job", [handle_file(many)], ["segment crack"], "")
    left = sorted(p.name for p in jobs.iterdir())
    assert "a job holds at most 500" in status and len(left) <= 2, f"{status[:120]}; {left}"
    return f"leftover .tmp pruned at start-up; a 501-photo zip refused, {len(left)} job folders left (keep 2)"


def case_bad_job_values(world: World) -> str:
    from gradio_client import handle_file
    before = sorted((world.out / "jobs").iterdir())
    huge = call(world, "/run_job", [handle_file(world.photo)], ["segment crack"], "", True, 0.5, 1e308)
    nan = raw_call(world, "run_job", [startup_choice(world.model), [_uploaded(world, world.photo)], ["segment crack"],
                                      "", False, float("nan"), None, 50, "auto", None])
    inputs = _defaults(world, "segment")
    inputs[:6] = [startup_choice(world.model), _uploaded(world, world.photo), ["segment crack"], "", False,
                  float("nan")]
    segment = raw_call(world, "segment", inputs)
    assert "1e+308 is not a number from 0 to 1000" in huge, huge[:160]
    assert "nan is not a probability" in nan and "nan is not a probability" in segment, nan[:120] + segment[:120]
    assert sorted((world.out / "jobs").iterdir()) == before, "a refused job left a folder"
    return "mm per pixel 1e308 and a NaN threshold (Jobs, /segment): one line each, no folder left"


def _defaults(world: World, api: str) -> list:
    """The default values of the inputs of the event named ``api``, from the app's config."""
    config = httpx.get(world.server.url + "config", timeout=30).json()
    [dependency] = [d for d in config["dependencies"] if d.get("api_name") == api]
    values = {c["id"]: c.get("props", {}).get("value") for c in config["components"]}
    return [values.get(i) for i in dependency["inputs"]]


def _uploaded(world: World, path: str) -> dict:
    """``path`` uploaded to the server, as the FileData a raw event call sends."""
    with open(path, "rb") as handle:
        response = httpx.post(world.server.url + "gradio_api/upload", files={"files": handle}, timeout=TIMEOUT_S)
    [server_path] = response.json()
    return {"path": server_path, "meta": {"_type": "gradio.FileData"}, "orig_name": Path(path).name}


def case_duplicate_zip_member(world: World) -> str:
    from gradio_client import handle_file
    twice = _zip(world.scratch / "twice.zip", [("a.jpg", _jpeg()), ("a.jpg", b"broken"), ("b.jpg", _jpeg())])
    status = call(world, "/run_job", [handle_file(twice)], ["segment crack"], "")
    assert "Job done" in status and "1 measured" in status, status[:200]
    return f"a zip holding a.jpg twice: a.jpg refused by name, b.jpg run ({status[:40]}…)"


def case_job_note_size(world: World) -> str:
    client = world.client()
    done = call(world, "/run_job", [_handle(world.photo)], ["segment crack"], "", client=client)
    assert "Job done" in done, done[:200]
    status = call(world, "/save_job_note", "(job)", "x" * 100_000, client=client)
    assert "the limit is 4,000" in status, status[:200]
    return "a 100,000-character job note: one line, the note kept as it was"


def _handle(path: str) -> object:
    from gradio_client import handle_file
    return handle_file(path)


def case_cli_out_inside_photos(world: World) -> str:
    site = world.scratch / "site"
    make_split(site, n=3)
    out = site / "job"
    runs = [cli("-m", "drywall_qa.cli.job", str(site), "--prompts", "segment crack", "--out", str(out),
                "--model", world.model) for _ in range(2)]
    assert all(run.returncode == 0 for run in runs), runs[-1].stderr[-300:]
    photos = json.loads((out / "summary.json").read_text())["photos"]
    assert photos == 3, f"{photos} photos after the resume"
    return "a job whose --out lies in its photo folder: 3 photos before and after the resume"


def case_text_encoder(world: World) -> str:
    lines = []
    for value in ("this", "/etc"):
        checkpoint = Path(shutil.copytree(BUNDLED_DIR, world.scratch / f"encoder-{len(lines)}"))
        config = json.loads((checkpoint / "config.json").read_text())
        (checkpoint / "config.json").write_text(json.dumps({**config, "text_encoder": value}))
        run = cli("-m", "drywall_qa.cli.predict", world.photo, "--prompts", "segment crack", "--model", str(checkpoint),
                  "--out", str(world.scratch / "p"))
        assert "Beautiful is better" not in run.stdout + run.stderr, "the checkpoint imported a module"
        lines.append(one_line_error(run))
        assert "field 'text_encoder'" in run.stderr, run.stderr[-300:]
    return f"text_encoder 'this' and '/etc': one line each ({lines[0][:40]}…)"


def case_decision_files(world: World) -> str:
    split = world.split(0, "cracks/valid")
    files = {"old-empty": {"reviews": {"img0.png": {"segment crack": {"decision": []}}}},
             "old-comment": {"reviews": {"img0.png": {"segment crack": {"decision": "reject", "comment": ["x"]}}}},
             "mask": {"version": 2, "images": {"img0.png": {"decision": "ground_truth_wrong", "mask": "zzz",
                                                            "mask_source": "edited"}}},
             "deep": "[" * 100_000 + "]" * 100_000}
    verdicts = []
    for name, content in files.items():
        path = world.scratch / f"{name}.json"
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        run = cli("-m", "drywall_qa.review", "export", "--decisions", str(path), "--split", split, "--out",
                  str(world.scratch / f"export-{name}"))
        verdicts.append("ok" if run.returncode == 0 and "Traceback" not in run.stderr else one_line_error(run)[-30:])
    run = cli("-m", "drywall_qa.review", "export", "--decisions", str(world.scratch), "--split", split, "--out",
              str(world.scratch / "export-dir"))
    verdicts.append(one_line_error(run)[-30:])
    assert verdicts[0] == "ok", verdicts
    return "; ".join(verdicts)


#: run before the heavy flood (its admitted evaluation holds this address's place in the heavy lane)
SERVING_CASES: list[tuple[str, Callable[[World], str]]] = [
    ("12 small beside a large photo", case_small_beside_large_photo),
    ("13 small beside a job", case_small_beside_job),
    ("14 two large photos at once", case_two_large_photos),
    ("15 refused job leaves nothing", case_refused_job_leaves_nothing),
    ("16 bad job values", case_bad_job_values), ("17 duplicate zip member", case_duplicate_zip_member),
    ("18 job note size", case_job_note_size), ("19 CLI --out inside the photos", case_cli_out_inside_photos),
    ("20 text_encoder allow-list", case_text_encoder), ("21 hand-edited decision files", case_decision_files),
    ("22 forged X-Forwarded-For", case_forwarded_for),
]
