"""The Train tab on a ZeroGPU Space: Start and Resume go on by driving the run's GPU slices.

Off ZeroGPU a run trains in the job queue's child process and this does nothing. On ZeroGPU the
click's second part (`drive_slices`) calls one `@spaces.GPU` function per slice from the app's
process while the page is open (`rm_demo.zero_gpu.drive`); the 1-second timer draws the curves from
the run folder as for any run. Closing the page pauses the run; Resume goes on from its checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator

import gradio as gr

from rm_demo.app.state import Session
from rm_demo.runs import RunFolder
from rm_demo.settings import current
from rm_demo.zero_gpu import DEFAULT_SLICE_S, drive


def slice_message(payload: dict) -> str:
    """One line for what the last GPU yield said."""
    if payload.get("note"):
        return payload["note"].capitalize() + "."
    if payload.get("error") and payload.get("status") in ("failed", ""):
        return f"**Cannot go on:** {payload['error']}"
    step, steps = payload.get("step", 0), payload.get("max_steps") or "?"
    return {
        "completed": "Trained on the GPU.",
        "cancelled": "Stopped.",
        "paused": f"Paused at step {step} of {steps}: Resume goes on from there.",
    }.get(payload.get("status", ""), f"Training on the borrowed GPU: step {step} of {steps}.")


def drive_slices(session: Session, on_gpu_quota: str = "cpu") -> Iterator[tuple]:
    """After Start or Resume on ZeroGPU: (message, timer) for each GPU yield until the run ends or the page closes."""
    if not current().zero_gpu or not session.run_dir:
        return
    run = RunFolder(session.run_dir)
    data = run.read()
    if data.get("status") != "queued" or data.get("pid") is not None:  # not a run this click just queued
        return
    cap = float(run.config(data).slice_seconds or DEFAULT_SLICE_S)
    for payload in drive(run.path, cap, on_gpu_quota, resume=data.get("resume") is True):
        yield slice_message(payload), gr.Timer(active=True)
