"""Hostile and careless clients against a fresh ``python app.py`` on 127.0.0.1: each finding of the hardening issue
replayed, one verdict line per case.

Run from the repository root: ``python -m bench.hostile [--model DIR|tiny]`` (default: the bundled model). Loopback
only; every request has a timeout and every flood a fixed size, so the script stops by itself. The server is
started with hostile data roots built in a temp folder: a split whose polygon reaches 4e8 px, one declaring a
60000×60000 image, one with a degenerate polygon, one whose annotation file is a symlink to a file outside the
roots, two roots both holding ``cracks/valid``, and leftovers of killed writes in its output folder. A case
*fails* when the server answers wrongly and *crashes* when the server process is gone after it. The last line
reads ``hostile_cases: <n> failures: <n> crashes: <n>``.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image

from bench.clients import Client, MemoryMonitor, Request, wall_photos
from bench.load import TYPED_PROMPTS, resolve_model
from drywall_qa.app.prompts import KNOWN_PROMPTS
from drywall_qa.testing.app_server import REPO, AppServer, serve_app
from drywall_qa.testing.splits import make_split

PROMPTS = ["segment crack"]
FLOOD, FLOOD_ANSWER_S = 65, 10.0
SESSIONS, SESSION_GROWTH_MB = 100, 150.0
TIMEOUT_S = 120.0


@dataclass
class World:
    """The running server and the hostile files it was started with."""

    server: AppServer
    scratch: Path
    roots: list[Path]
    out: Path
    photo: str
    #: what the server runs: ``lite`` or a checkpoint folder (CLI cases use it too)
    model: str = "lite"

    def client(self) -> Client:
        return Client(self.server.url, TIMEOUT_S)

    def split(self, root: int, name: str) -> str:
        return str(self.roots[root] / name)


def polygon_split(folder: Path, polygon: list[float], width: int = 64, height: int = 64) -> Path:
    """A one-image split with ``polygon`` as its only annotation and the declared image size."""
    make_split(folder, n=1)
    document = json.loads((folder / "_annotations.coco.json").read_text())
    document["images"][0].update(width=width, height=height)
    document["annotations"][0]["segmentation"] = [polygon]
    (folder / "_annotations.coco.json").write_text(json.dumps(document))
    return folder


def build_world(scratch: Path) -> tuple[list[Path], Path]:
    """Data roots and the output folder, with the hostile content of the module docstring."""
    roots = [scratch / "root-a", scratch / "root-b"]
    for root in roots:
        make_split(root / "cracks" / "valid", n=3)
    polygon_split(roots[0] / "hostile" / "coords", [0, 0, 4e8, 0, 4e8, 4e8])
    polygon_split(roots[0] / "hostile" / "huge", [0, 0, 10, 0, 10, 10], width=60000, height=60000)
    polygon_split(roots[0] / "hostile" / "degenerate", [1, 1, 2, 2, 3, 3])
    (scratch / "secret.json").write_text('{"SECRET-TOKEN-123": "not for clients"}')
    (roots[0] / "b" / "s").mkdir(parents=True)
    (roots[0] / "b" / "s" / "_annotations.coco.json").symlink_to(scratch / "secret.json")
    make_split(roots[1] / "flood" / "valid", n=12)
    out = scratch / "server" / "outputs"
    (out / "evaluations" / ".partial-x-abc123").mkdir(parents=True)
    (out / "reviews").mkdir(parents=True)
    (out / "reviews" / ".cracks__valid.json.k1.tmp").write_text("{")
    return roots, out


def status_of(result: object) -> str:
    return str(result[0] if isinstance(result, (list, tuple)) else result)


def call(world: World, api: str, *args: object, client: Client | None = None) -> str:
    """The status line of one API call (an exception's text when gradio refuses it)."""
    try:
        return status_of((client or world.client()).client.predict(*args, api_name=api))
    except Exception as err:  # noqa: BLE001 — a refusal is an answer too
        return f"refused: {err}"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S)


def one_line_error(run: subprocess.CompletedProcess) -> str:
    lines = [line for line in run.stderr.strip().splitlines() if line.strip()]
    assert run.returncode == 2 and "Traceback" not in run.stderr, f"exit {run.returncode}: {run.stderr[-300:]}"
    assert lines and "error" in lines[-1], f"no error line: {run.stderr[-200:]}"
    return lines[-1][:110]


def case_polygon_bombs(world: World) -> str:
    for name in ("coords", "huge"):
        start = time.monotonic()
        status = call(world, "/score_split", world.split(0, f"hostile/{name}"), PROMPTS, "", True, 0.5, 1)
        assert "Error" in status and time.monotonic() - start < 20, status[:200]
    run = cli("-m", "drywall_qa.cli.evaluate", "--split", world.split(0, "hostile/coords"), "--out",
              str(world.scratch / "cli-eval"), "--dataset", "cracks")
    return f"Score refused both splits; evaluate CLI: {one_line_error(run)}"


@functools.lru_cache
def event(url: str, api: str) -> tuple[int, int]:
    """``(fn_index, number of inputs)`` of the app's event named ``api``, from its config (read once)."""
    config = httpx.get(url + "config", timeout=30).json()
    [found] = [(i, len(d["inputs"])) for i, d in enumerate(config["dependencies"]) if d.get("api_name") == api]
    return found


def join(world: World, api: str, data: list, session: str) -> int:
    """Queue ``data`` (raw JSON, so NaN is allowed) for the event named ``api`` as session ``session``, the way a
    browser does; the HTTP status of the join."""
    fn_index, inputs = event(world.server.url, api)
    assert len(data) == inputs, f"{api} takes {inputs} inputs"
    body = {"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None, "trigger_id": None}
    return httpx.post(world.server.url + "gradio_api/queue/join", content=json.dumps(body),
                      headers={"Content-Type": "application/json"}, timeout=30).status_code


def case_heavy_flood(world: World) -> str:
    data = [None, world.split(1, "flood/valid"), list(KNOWN_PROMPTS), "", True, 0.5, 12, 16,
            ["blur", "noise", "jpeg", "brightness", "rotate", "crack"], ""]
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: join(world, "evaluate", data, uuid.uuid4().hex[:11]), range(FLOOD)))
    time.sleep(1.0)
    start = time.monotonic()
    outcome = world.client().send(Request(world.photo, PROMPTS, ""))
    seconds = time.monotonic() - start
    assert outcome.error is None and seconds <= FLOOD_ANSWER_S, f"{outcome.error} after {seconds:.1f} s"
    return f"{FLOOD} heavy joins ({codes.count(200)} accepted by gradio); a new client's /segment in {seconds:.1f} s"


def case_session_memory(world: World) -> str:
    memory = MemoryMonitor(world.server.process.pid)
    plan = [Request(world.photo, list(KNOWN_PROMPTS), ", ".join(TYPED_PROMPTS)) for _ in range(SESSIONS)]
    client = world.client()
    client.run(plan[:5], time.monotonic() + 300, new_sessions=True)
    before = memory.settled()
    outcomes = client.run(plan, time.monotonic() + 600, new_sessions=True)
    growth = memory.settled() - before
    memory.stop()
    errors = [o.error for o in outcomes if o.error]
    assert not errors and growth <= SESSION_GROWTH_MB, f"{len(errors)} errors, +{growth:.0f} MiB"
    return (f"{SESSIONS} new sessions × 8 prompts: RSS {before:.0f} MiB, +{growth:.0f} MiB "
            f"(bound {SESSION_GROWTH_MB:.0f})")


def case_editor_bomb(world: World) -> str:
    from gradio_client import handle_file

    bomb = world.scratch / "bomb.png"
    Image.new("1", (12000, 12000)).save(bomb)
    memory = MemoryMonitor(world.server.process.pid)
    before = memory.settled(1.0)
    editor = {"background": handle_file(str(bomb)), "layers": [], "composite": None}
    quiet = call(world, "/segment", handle_file(world.photo), PROMPTS, "", True, 0.5, 0.5, "off", editor)
    drawn = call(world, "/segment", handle_file(world.photo), PROMPTS, "", True, 0.5, 0.5, "drawn", editor)
    peak = memory.stop() - before
    assert "prompt" in quiet and "Error" not in quiet, quiet[:200]
    assert "too many pixels" in drawn and peak < 300, f"{drawn[:200]}; peak +{peak:.0f} MiB"
    return f"off: segmented; on: refused ({drawn[:60]}…); peak RSS +{peak:.0f} MiB"


def case_review_roots(world: World) -> str:
    for root, decision in ((0, "prediction_correct"), (1, "prediction_wrong")):
        client = world.client()
        status = call(world, "/score_split", world.split(root, "cracks/valid"), PROMPTS, "", True, 0.5, 3,
                      client=client)
        assert "Scored" in status, status[:200]
        status = call(world, "/save_review", "img0.png", PROMPTS[0], decision, "", client=client)
        assert f"Saved *{decision.replace('_', ' ')}*" in status, status[:200]
    decisions = sorted(json.loads(f.read_text())["images"]["img0.png"]["decision"]
                       for f in (world.out / "reviews").glob("cracks__valid-*.json"))
    assert decisions == ["prediction_correct", "prediction_wrong"], decisions
    return ("two roots' cracks/valid: two review files, both decisions kept; /save_review from gradio_client")


def case_symlinked_annotations(world: World) -> str:
    status = call(world, "/score_split", world.split(0, "b/s"), PROMPTS, "", True, 0.5, 1)
    assert "SECRET" not in status and ("outside" in status or "refused" in status), status[:200]
    return f"refused without its content: {status[:90]}"


def case_load_model(world: World) -> str:
    typed = call(world, "/load_model", "folder", "/etc")
    chosen = call(world, "/load_model", "/etc", None)
    assert "outside the model folders" in typed and ("not offered" in chosen or "refused" in chosen), typed + chosen
    assert world.client().send(Request(world.photo, PROMPTS, "")).error is None, "the startup model stopped serving"
    return "a typed folder outside --models-dir and an unoffered choice refused; startup model still serves"


def raw_call(world: World, api: str, data: list) -> str:
    """Send ``data`` (raw JSON, so NaN is allowed) to the event named ``api`` in a new session; its status line."""
    session = uuid.uuid4().hex[:11]
    assert join(world, api, data, session) == 200
    with httpx.stream("GET", world.server.url + f"gradio_api/queue/data?session_hash={session}",
                      timeout=TIMEOUT_S) as stream:
        for line in stream.iter_lines():
            message = json.loads(line[5:]) if line.startswith("data:") else {}
            if message.get("msg") == "process_completed":
                output = message.get("output") or {}
                return str((output.get("data") or [output.get("error")])[0])
    return "no answer"


def case_bad_values(world: World) -> str:
    status = raw_call(world, "evaluate", [None, world.split(0, "cracks/valid"), PROMPTS, "", True, 0.5, math.nan, 0,
                                          [], ""])
    assert "not a finite number" in status, status[:200]
    skipped = call(world, "/score_split", world.split(0, "hostile/degenerate"), PROMPTS, "", True, 0.5, 1)
    assert "skipped" in skipped, skipped[:200]
    return "NaN limit: one line; a degenerate annotation is reported as skipped"


def case_cli_lines(world: World) -> str:
    existing = world.scratch / "a-file"
    existing.write_text("x")
    runs = [cli("-m", "drywall_qa.cli.predict", world.photo, "--out", str(existing)),
            cli("-m", "train", "--lr", "nan", "--output-dir", str(world.scratch / "t")),
            cli("app.py", "--port", "99999"), cli("app.py", "--threads", "-3")]
    return "; ".join(one_line_error(run)[:40] for run in runs)


def case_leftovers_and_retention(world: World) -> str:
    left = [p for p in (world.out / "evaluations").iterdir() if p.name.startswith(".")]
    left += [p for p in (world.out / "reviews").iterdir() if p.name.endswith(".tmp")]
    assert not left, f"left over: {left}"
    for _ in range(3):
        status = call(world, "/evaluate", world.split(0, "cracks/valid"), PROMPTS, "", True, 0.5, 1, 0)
        assert "Evaluated" in status, status[:200]
    kept = [p for p in (world.out / "evaluations").iterdir() if not p.name.startswith(".")]
    assert len(kept) == 2, f"{len(kept)} evaluation folders kept, expected 2"
    return "partial folder and temp file pruned at start-up; 3 evaluations with --keep-evaluations 2 keep 2"


#: the flood runs last: its admitted evaluation holds this address's place in the heavy lane
CASES: list[tuple[str, Callable[[World], str]]] = [
    ("1 polygon and image-size bombs", case_polygon_bombs),
    ("11 leftovers and retention", case_leftovers_and_retention),
    ("4 editor bomb", case_editor_bomb), ("5+8 review roots and /save_review", case_review_roots),
    ("6 symlinked annotation file", case_symlinked_annotations), ("7 /load_model", case_load_model),
    ("9 bad values", case_bad_values), ("10 CLI one-line errors", case_cli_lines),
    ("3 memory per session", case_session_memory), ("2 heavy flood", case_heavy_flood),
]


def all_cases() -> list[tuple[str, Callable[[World], str]]]:
    """Every case in the order they run: the serving cases (:mod:`bench.hostile_serving`, which builds on this
    module) before the last two, which fill the heavy lane and take the most memory."""
    from bench.hostile_serving import SERVING_CASES

    return [*CASES[:-2], *SERVING_CASES, *CASES[-2:]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="lite", help="checkpoint folder, 'lite' (bundled, default) or 'tiny'")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    from bench.hostile_serving import plant

    failures = crashes = 0
    with tempfile.TemporaryDirectory(prefix="drywall-qa-hostile-") as scratch:
        scratch = Path(scratch)
        model = args.model if args.model == "lite" else resolve_model(args.model, scratch)
        roots, out = build_world(scratch)
        plant(out)
        extra = ["--keep-evaluations", "2"]
        cases = all_cases()
        with serve_app(model, scratch / "server", roots=roots, extra_args=extra) as server:
            world = World(server, scratch, roots, out, wall_photos(scratch, count=1)[0], model)
            for name, run in cases:
                try:
                    verdict = f"ok    {name}: {run(world)}"
                except Exception as err:  # noqa: BLE001 — every failure is reported, whatever it is
                    failures += 1
                    verdict = f"FAIL  {name}: {type(err).__name__}: {str(err)[:300]}"
                print(verdict, flush=True)
                if server.process.poll() is not None:
                    crashes += 1
                    print(f"CRASH the server exited with {server.process.returncode}:\n{server.log_tail(800)}")
                    break
    print(f"hostile_cases: {len(cases)} failures: {failures} crashes: {crashes}")


if __name__ == "__main__":
    main()
