"""Background jobs: FIFO queue on one device, cancel, a killed trainer, and a 2-process torchrun."""

import json
import os
import subprocess
import sys
import time

import pytest
from records import leave_record

from rm_demo.jobs import cancel_job, job_status, kill_process_tree, start_job, wait_for
from rm_demo.runs import list_runs, prepare_run
from rm_demo.train import TrainConfig

slow = pytest.mark.slow
AUTOGROUPS = os.path.exists("/proc/self/autogroup")  # Linux with CONFIG_SCHED_AUTOGROUP (on here and on CI)


def _start(seed_csv, run, **kw):
    """A queued run of the seed data (prepare_run, as the CLI and the app start one) and its process."""
    prepare_run(TrainConfig(epochs=kw.pop("epochs", 1), batch_size=1, **kw), seed_csv, run)
    return start_job(run)


def _kill(run) -> None:
    """kill -9 of the trainer and its children, no warning."""
    record = run.read()
    assert kill_process_tree(record["pid"], record["pid_started"])


def _wait_running_with_steps(run, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = job_status(run)
        if status.status == "running" and status.step >= 1:
            return status
        assert not status.finished, status
        time.sleep(0.2)
    raise AssertionError("the job never reached its first step")


@slow
def test_queue_is_fifo_one_at_a_time(seed_csv, tmp_path):
    first = _start(seed_csv, tmp_path / "runs" / "a")
    second = _start(seed_csv, tmp_path / "runs" / "b")
    assert job_status(second).status == "queued"  # the first cannot have finished yet: it is still importing torch
    a, b = wait_for(first, 300), wait_for(second, 300)
    assert (a.status, b.status) == ("completed", "completed"), (a.error, b.error)
    assert first.read()["finished_at"] <= second.read()["started_at"]
    assert a.metrics and a.device_name.startswith("CPU")
    assert {r.name for r in list_runs(tmp_path / "runs")} == {"a", "b"}


@slow
def test_cancel_stops_at_next_step(seed_csv, tmp_path):
    run = _start(seed_csv, tmp_path / "runs" / "long", epochs=200)
    _wait_running_with_steps(run)
    trainer = run.read()["pid"]
    # Below the app in the CPU's queue, its session's autogroup included (which alone ranks it against the app).
    assert os.getpriority(os.PRIO_PROCESS, trainer) == os.getpriority(os.PRIO_PROCESS, 0) + 10
    if AUTOGROUPS:
        assert open(f"/proc/{trainer}/autogroup").read().split()[-1] == "10"
    cancel_job(run)
    final = wait_for(run, 120)
    assert final.status == "cancelled"
    assert final.step < 400  # stopped early (3 pairs x 200 epochs would be 400 steps)


@slow
def test_killed_trainer_reads_as_failed_and_next_job_runs(seed_csv, tmp_path):
    doomed = _start(seed_csv, tmp_path / "runs" / "doomed", epochs=200)
    _wait_running_with_steps(doomed)
    _kill(doomed)
    status = job_status(doomed)
    assert status.status == "failed" and "killed or crashed" in status.error
    after = _start(seed_csv, tmp_path / "runs" / "after")
    assert wait_for(after, 300).status == "completed"


@slow
def test_torchrun_two_processes(seed_csv, tmp_path):
    run = tmp_path / "ddp"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533"]
    proc = subprocess.run(
        [
            *torchrun,
            "-m",
            "rm_demo",
            "train",
            str(seed_csv),
            "-o",
            str(run),
            "--epochs",
            "2",
            "--batch-size",
            "1",
            "--eval-fraction",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["world_size"] == 2
    # One main process: on a CPU machine both took themselves for it (each wrote the record and printed it).
    assert proc.stdout.count('"status": "completed"') == 1, proc.stdout
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [m["step"] for m in metrics if "loss" in m]
    assert steps == sorted(set(steps))  # one writer: no step logged twice
    assert (run / "model" / "config.json").exists()


def test_a_reused_pid_is_not_the_run(tmp_path, monkeypatch):
    """After a restart a run.json may name a pid that now belongs to another process (here: this one)."""
    from rm_demo.jobs import cancel_job, job_status, process_start

    run = tmp_path / "stale"
    run.mkdir()
    record = {"status": "running", "created_at": 1, "pid": os.getpid(), "pid_started": process_start(os.getpid()) - 5}
    (run / "run.json").write_text(json.dumps(record))
    status = job_status(run)
    assert status.status == "failed" and "ended without finishing" in status.error
    monkeypatch.setattr("rm_demo.jobs.kill_process_tree", lambda *a: pytest.fail("must not signal this process"))
    assert cancel_job(run, grace_s=0.01) is False and not (run / "cancel").exists()


def test_an_old_record_without_a_start_time_reads_as_dead(tmp_path):
    from rm_demo.jobs import job_status

    run = tmp_path / "old"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"status": "queued", "created_at": 1, "pid": os.getpid()}))
    assert job_status(run).status == "failed"


def test_the_run_process_is_recognised(tmp_path):
    from rm_demo.runs import process_start, record_alive

    me = {"pid": os.getpid(), "pid_started": process_start(os.getpid())}
    assert record_alive(me) and not record_alive({**me, "pid_started": me["pid_started"] + 5})


def _train_steps(run) -> list[int]:
    return [m["step"] for m in run.metrics() if "loss" in m]


@slow
def test_a_killed_run_resumes_from_its_checkpoint_with_its_whole_curve(seed_csv, tmp_path, monkeypatch):
    """Killed at step k (kill -9, no warning), resumed by the CLI: it finishes, and its metrics hold
    one loss point per logged step from 1 to the end, the ones before the kill included."""
    monkeypatch.setenv("RM_DEMO_CHECKPOINT_SECONDS", "0")  # a 3-second run: every scheduled checkpoint
    run = _start(seed_csv, tmp_path / "runs" / "resumable", epochs=1)  # min steps: 30
    deadline = time.time() + 240
    while not (run.latest_checkpoint() and job_status(run).step >= 9):
        assert time.time() < deadline and not job_status(run).finished, job_status(run)
        time.sleep(0.2)
    _kill(run)
    assert job_status(run).status == "failed"
    before = _train_steps(run)
    proc = subprocess.run(
        [sys.executable, "-m", "rm_demo", "train", "--resume", str(run.path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["status"] == "completed"
    record = run.read()
    assert record["resumed_from_step"] >= 3 and record["final_metrics"]["steps"] == record["max_steps"]
    steps = _train_steps(run)
    assert steps == sorted(set(steps)) and steps[0] == before[0] and steps[-1] >= record["max_steps"] - 5
    assert [s for s in before if s <= record["resumed_from_step"]] == steps[
        : len([s for s in before if s <= record["resumed_from_step"]])
    ]
    assert run.metrics()[-1].get("final") and not (run.path / "trainer").exists()  # done: the checkpoint is gone


def test_resume_needs_a_checkpoint(tmp_path):
    from rm_demo import cli

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text(json.dumps({"status": "failed", "config": {"input": "x.csv"}}))
    assert cli.main(["train", "--resume", str(tmp_path / "run")]) == 2


def test_a_requeued_run_keeps_its_date_and_waits_behind_the_runs_queued_before_it(tmp_path):
    """Resume queues a run again (behind those waiting) without dating it by the resume (issue 37)."""
    from rm_demo.jobs import _my_turn, requeue
    from rm_demo.runs import RunFolder, RunRecord, process_start

    old = RunFolder(tmp_path / "old")
    leave_record(old, status="cancelled", created_at=1000.0)
    waiting = RunFolder(tmp_path / "waiting")
    leave_record(waiting, status="queued", created_at=2000.0, pid=os.getpid(), pid_started=process_start(os.getpid()))
    requeue(old)
    record = RunRecord.load(old.path)
    assert record.created_at == 1000.0 and record.queued_at > 2000.0  # its date stays; its turn is now
    assert not _my_turn(old) and _my_turn(waiting)


@pytest.mark.skipif(not AUTOGROUPS, reason="no scheduler autogroups on this kernel")
def test_a_trainer_in_a_session_of_its_own_lowers_its_autogroup_too():
    """Linux shares the CPU between sessions' autogroups whatever the nice of their processes: a trainer
    niced alone in its own session (as `start_job` starts it) took twice the app's CPU on 2 cores."""
    code = "from rm_demo.jobs import lower_priority; lower_priority(10); print(open('/proc/self/autogroup').read())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, start_new_session=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["nice", "10"]
    again = subprocess.run(
        [sys.executable, "-c", code.replace("(10)", "(15)")], capture_output=True, text=True, start_new_session=True
    )
    assert again.stdout.split()[-1] == "15"  # a group of its own: not the app's, not the last child's
