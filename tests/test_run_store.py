"""The run store: run.json under a lock, liveness from the process, one way to start a run."""

import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import write_checkpoint
from records import leave_record

from rm_demo.access import owner_key
from rm_demo.config import TrainConfig
from rm_demo.errors import InputError
from rm_demo.limits import Limits, check_start
from rm_demo.runs import (
    DEAD_PROCESS_ERROR,
    NO_PID_GRACE_S,
    RunFolder,
    RunRecord,
    checkpoint_step,
    live_runs,
    prepare_run,
    process_start,
)

ROOT = Path(__file__).resolve().parents[1]
ALICE, BOB = owner_key("a" * 32), owner_key("b" * 32)


def _hammer(run_dir: str, prefix: str, count: int) -> None:
    run = RunFolder(run_dir)
    for i in range(count):
        run.update(**{f"{prefix}-{i}": i})


def test_run_json_loses_no_write_from_threads_and_processes(tmp_path):
    """4 threads and 2 processes rewrite one run.json at once; every key each of them set survives."""
    run = RunFolder(tmp_path / "run")
    leave_record(run, status="running", shared=False)
    errors = []

    def thread(prefix):
        try:
            _hammer(str(run.path), prefix, 150)
        except Exception as exc:  # a lost rename or a half-read file would land here
            errors.append(exc)

    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_hammer, args=(str(run.path), f"p{n}", 60)) for n in range(2)]
    threads = [threading.Thread(target=thread, args=(f"t{n}",)) for n in range(4)]
    for worker in (*processes, *threads):
        worker.start()
    run.update(shared=True)  # a facilitator's Share in the middle of it all
    for worker in (*processes, *threads):
        worker.join(120)
    data = run.read()
    assert not errors and all(p.exitcode == 0 for p in processes)
    assert data["shared"] is True and data["status"] == "running"
    expected = {f"t{n}-{i}" for n in range(4) for i in range(150)} | {f"p{n}-{i}" for n in range(2) for i in range(60)}
    assert expected <= set(data), f"{len(expected - set(data))} writes lost"
    assert not list(run.path.glob(".run.json.*.tmp"))  # no temporary file left behind


def _record(path: Path, status: str, owner: str = ALICE, **extra) -> Path:
    path.mkdir(parents=True)
    record = {"status": status, "created_at": time.time(), "updated_at": time.time(), "owner": owner, **extra}
    (path / "run.json").write_text(json.dumps(record))
    return path


def _process_that_dies():
    """A real process, recorded as a run's trainer, then killed: what `kill -9` of a trainer leaves."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = process_start(proc.pid)
    return proc, {"pid": proc.pid, "pid_started": started}


def test_a_run_killed_while_no_page_watched_frees_its_slot_at_the_next_queue_check(tmp_path):
    proc, identity = _process_that_dies()
    _record(tmp_path / "doomed", "running", **identity)
    rules = Limits(live_per_visitor=1, live_total=1)
    with pytest.raises(InputError, match="already have 1 run"):  # alive: it holds Alice's slot
        check_start(TrainConfig(), 10, rules, tmp_path, ALICE)
    proc.kill()
    proc.wait()
    # No job_status, no page: the queue check itself asks the process, and finds it gone.
    check_start(TrainConfig(), 10, rules, tmp_path, ALICE)
    check_start(TrainConfig(), 10, rules, tmp_path, BOB)
    record = RunRecord.load(tmp_path / "doomed")
    assert record.status == "failed" and record.error == DEAD_PROCESS_ERROR
    assert json.loads((tmp_path / "doomed" / "run.json").read_text())["status"] == "failed"  # saved, not guessed


def test_a_stopped_run_whose_process_died_reads_as_cancelled(tmp_path):
    proc, identity = _process_that_dies()
    path = _record(tmp_path / "stopped", "running", **identity)
    (path / "cancel").touch()
    proc.kill()
    proc.wait()
    assert RunRecord.load(path).status == "cancelled" and RunRecord.load(path).error is None


def test_a_queued_run_without_a_process_is_alive_only_for_a_moment(tmp_path):
    _record(tmp_path / "starting", "queued")  # prepare_run wrote it; its process is being started
    assert [run.name for run in live_runs(tmp_path)] == ["starting"]
    stale = _record(tmp_path / "never-started", "queued", BOB)
    record = json.loads((stale / "run.json").read_text())
    record["updated_at"] = record["created_at"] = time.time() - NO_PID_GRACE_S - 1
    (stale / "run.json").write_text(json.dumps(record))
    assert [run.name for run in live_runs(tmp_path)] == ["starting"]
    assert RunRecord.load(stale).status == "failed"


def test_a_live_process_with_another_start_time_is_not_the_run(tmp_path):
    """A pid reused after a restart (here: this test's own) names another process."""
    own = {"pid": os.getpid(), "pid_started": process_start(os.getpid()) - 5}
    path = _record(tmp_path / "reused", "running", **own)
    assert RunRecord.load(path).status == "failed"
    path2 = _record(tmp_path / "ours", "running", pid=os.getpid(), pid_started=process_start(os.getpid()))
    assert RunRecord.load(path2).status == "running"


def test_the_facilitators_stop_and_delete_work_on_a_dead_run(tmp_path, monkeypatch):
    from rm_demo import jobs
    from rm_demo.runs import delete_run

    proc, identity = _process_that_dies()
    path = _record(tmp_path / "dead", "running", **identity)
    proc.kill()
    proc.wait()
    monkeypatch.setattr(jobs, "kill_process_tree", lambda *a: pytest.fail("nothing alive to kill"))
    assert jobs.cancel_job(path) is False  # not "Stopping...": there is nothing to stop
    assert "Deleted" in delete_run(tmp_path, "dead")


def test_prepare_run_copies_the_data_and_writes_a_config_that_reads_back(tmp_path, seed_csv):
    source = tmp_path / "mine" / "feedback.csv"
    source.parent.mkdir()
    source.write_bytes(seed_csv.read_bytes())
    config = prepare_run(TrainConfig(epochs=2), source, tmp_path / "runs" / "r1", owner=ALICE)
    run = RunFolder(tmp_path / "runs" / "r1")
    assert Path(config.input) == run.path / "data.csv" and (run.path / "data.csv").read_bytes() == source.read_bytes()
    source.unlink()  # the user moves their file away: the run does not care
    moved = run.path.parent / "moved"
    run.path.rename(moved)  # and the run folder itself may move
    again = RunFolder(moved).config()
    assert again.epochs == 2 and Path(again.input) == moved / "data.csv" and again.output_dir == str(moved)
    record = RunRecord.load(moved)
    assert record.owner == ALICE and record.source_name == "feedback.csv" and record.status == "queued"
    assert "owner" not in json.loads((moved / "config.json").read_text())  # app-only facts stay out of the settings


def test_checkpoint_names_are_parsed_in_one_place(tmp_path):
    run = RunFolder(tmp_path)
    for name in ("checkpoint-6", "checkpoint-12", "checkpoint-x", "other-3"):
        (run.checkpoints_dir / name).mkdir(parents=True)
    write_checkpoint(run.checkpoints_dir / "checkpoint-6")
    assert [step for step, _ in run.checkpoints()] == [12, 6]
    assert run.latest_checkpoint().name == "checkpoint-6"  # 12 has no trainer_state.json: killed while saving
    assert checkpoint_step(Path("checkpoint-40")) == 40 and checkpoint_step(Path("checkpoint-4a")) is None


def test_no_module_reads_proc_or_imports_fcntl():
    """Process handling goes through psutil and locks through filelock: the same code on Mac and Windows.

    One Linux-only file is allowed: a scheduler autogroup's nice (`rm_demo.jobs.lower_autogroup`), which psutil
    has no call for; where the file is absent (Mac, Windows, kernels without autogroups) nothing happens."""
    allowed = '"/proc/self/autogroup"'
    offenders = [
        path.name
        for path in (ROOT / "rm_demo").rglob("*.py")
        for text in [path.read_text().replace(allowed, "")]
        if "/proc/" in text or "fcntl" in text or "os.killpg" in text
    ]
    assert offenders == []


def test_settings_are_read_in_one_module():
    """Only rm_demo.settings reads RM_DEMO_* variables; nothing writes os.environ to pass a flag on."""
    readers = []
    for path in (ROOT / "rm_demo").rglob("*.py"):
        text = path.read_text()
        if path.name != "settings.py" and ('environ.get("RM_DEMO' in text or 'os.environ["RM_DEMO' in text):
            readers.append(path.name)
    assert readers == []
