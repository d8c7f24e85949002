"""A run as the Train tab shows it: the progress bar, the status line, the training accuracy.

Plain text from a `JobStatus`: no gradio, so tests and other views can use it.
"""

from __future__ import annotations

import html

from rm_demo.jobs import JobStatus
from rm_demo.text import MIN_HELD_OUT_PAIRS, accuracy_phrase, counted


def progress_html(status: JobStatus) -> str:
    pct = 100 * status.progress
    eta = (
        f", about {int(status.eta_s // 60)} min {int(status.eta_s % 60)} s left"
        if status.eta_s and not status.finished
        else ""
    )
    text = {
        "queued": f"queued (position {status.queue_position}): waiting for the device",
        "running": f"step {status.step} of {status.max_steps or '?'}{eta}",
        "completed": "finished",
        "cancelled": "stopped",
        "failed": "failed",
        "paused": f"paused at step {status.step} of {status.max_steps or '?'}",
    }.get(status.status, status.status)
    color = {"failed": "#c62828", "cancelled": "#8d6e63", "paused": "#8d6e63", "completed": "#2e7d32"}.get(
        status.status, "#1565c0"
    )
    return (
        f'<div style="font-size:14px;margin-bottom:4px"><b>{html.escape(status.name)}</b>: {html.escape(text)}</div>'
        f'<div style="background:#e0e0e0;border-radius:6px;height:14px;width:100%">'
        f'<div id="rm-progress" data-status="{html.escape(status.status)}" '
        f'style="background:{color};height:14px;border-radius:6px;width:{pct:.1f}%"></div></div>'
    )


def train_accuracy(metrics: list[dict], last: int = 5) -> float | None:
    values = [m["train_accuracy"] for m in metrics if "train_accuracy" in m][-last:]
    return sum(values) / len(values) if values else None


def run_status_markdown(status: JobStatus) -> str:
    head = f"**Run** `{status.name}` · status **{status.status}**" + (
        f" · device: {status.device_name}" if status.device_name else ""
    )
    command = command_markdown(status.command)
    if status.error:  # a Stop that had to end the trainer is the visitor's own stop, not an error
        said = "Stopped" if status.status == "cancelled" else "Error"
        return head + f"\n\n**{said}:** {status.error}" + command
    if status.status == "paused":
        return (
            head + f"\n\nPaused at step {status.step}: its GPU slices stopped (the page that drove them closed, "
            "or the GPU quota ran out). **Resume** goes on from its checkpoint." + command
        )
    if status.status not in ("completed", "cancelled"):
        return head + command
    return head + "\n\n" + _outcome(status) + " The model is ready in step 4." + command


def command_markdown(command: str) -> str:
    """The CLI line that trains the same run again, for people who go on from a shell, and who will see
    the run it makes (it has no owner: the app shows it in a one-person app only)."""
    if not command:
        return ""
    return (
        f"\n\nThe command for this run:\n\n```bash\n{command}\n```\n\n"
        "A run made by this command has no owner: into this app's runs folder, a one-person app shows it (with "
        "its data) to whoever opens the app; a workshop or public app shows it only to the facilitator."
    )


def _outcome(status: JobStatus) -> str:
    fm = status.final_metrics or {}
    held_out = fm.get("eval_pairs") if fm.get("eval_pairs") is not None else status.eval_pairs
    accuracy = fm.get("eval_accuracy")
    averaged = (fm.get("averaged_epochs") or 1) > 1
    steps = counted(fm["steps"], "step") if fm.get("steps") else "training"
    avg = (
        f" (the saved model is the mean of the weights at the last {fm['averaged_epochs']} epoch ends)"
        if averaged
        else ""
    )
    if accuracy is not None and held_out is not None and held_out >= MIN_HELD_OUT_PAIRS:
        return (
            f"Held-out accuracy **{accuracy_phrase(accuracy, held_out)}**, mean reward margin "
            f"{fm.get('eval_margin') or 0:.3f}, after {steps}{avg}."
        )
    train_acc = train_accuracy(status.metrics)
    reason = (
        "no questions were held out"
        if not held_out
        else f"only {counted(held_out, 'held-out pair')}: too few to measure the model "
        f"(at least {MIN_HELD_OUT_PAIRS} needed)"
    )
    told = (
        f" Training accuracy (on pairs it learned from, last steps): {train_acc:.0%}." if train_acc is not None else ""
    )
    return f"Done after {steps}{avg}; {reason}.{told}"
