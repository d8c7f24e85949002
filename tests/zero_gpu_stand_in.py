"""A stand-in for `spaces.GPU` on a machine without ZeroGPU, doing what its generator worker does.

Read from `spaces` 0.51 (zero/wrappers.py, `generator_function_wrapper`): the first call forks a
worker process; the arguments go to it pickled; the worker iterates the generator and puts each
yielded value on a queue, pickled (a value that does not pickle fails the call); after each value it
checks a stop event and closes the generator if it is set; the app's side yields what comes back and,
closed itself (the page went away), sets the stop event and returns without waiting for the worker.
A refused call (quota) raises a gradio error titled so before anything runs. Only the GPU and the
scheduling server are left out.
"""

from __future__ import annotations

import functools
import multiprocessing
import pickle

import gradio as gr


class StandInGPU:
    """`spaces.GPU` as a ZeroGPU Space has it: `StandInGPU()(duration=...)(fn)`, recording each call."""

    def __init__(self, refuse: list[Exception] | None = None):
        self.durations: list[float] = []  # what each call asked for
        self.refuse = list(refuse or [])  # errors to raise, one per call, before the rest are granted
        self.payloads: list = []  # every value that crossed, as unpickled on the app's side

    def __call__(self, task=None, *, duration=None, size=None):
        if callable(task):
            return self._wrap(task, duration)
        return lambda fn: self._wrap(fn, duration)

    def _wrap(self, task, duration):
        @functools.wraps(task)
        def handler(*args, **kwargs):
            asked = duration(*args, **kwargs) if callable(duration) else duration
            if self.refuse:
                raise self.refuse.pop(0)
            self.durations.append(asked)
            context = multiprocessing.get_context("fork")
            results, stop = context.Queue(), context.Event()
            sent = pickle.dumps((args, kwargs))  # the arguments cross pickled, as in spaces' arg_queue
            worker = context.Process(target=_worker, args=(task, sent, results, stop), daemon=True)
            worker.start()
            try:
                while True:
                    kind, value = results.get(timeout=600)
                    if kind == "end":
                        return
                    if kind == "error":
                        raise gr.Error(value, title="ZeroGPU worker error")
                    payload = pickle.loads(value)
                    self.payloads.append(payload)
                    yield payload
            except GeneratorExit:
                stop.set()  # the worker closes the generator after its next value
                # ... and, as spaces does (its handler's ThreadPoolExecutor block), the close returns only
                # once the worker has ended: the rest of its step and its checkpoint included.
                while results.get(timeout=600)[0] not in ("end", "error"):
                    pass
                raise

        return handler


def _worker(task, sent: bytes, results, stop) -> None:
    args, kwargs = pickle.loads(sent)
    generator = task(*args, **kwargs)
    try:
        for value in generator:
            if stop.is_set():
                generator.close()
                break
            results.put(("value", pickle.dumps(value)))  # a value that does not pickle fails here
    except Exception as exc:
        results.put(("error", f"{type(exc).__name__}: {exc}"))
        return
    results.put(("end", None))


def quota_error(left_s: float = 0, asked_s: float = 60) -> gr.Error:
    """The refusal spaces raises for a visitor over quota (client.schedule)."""
    message = f"You have exceeded your free ZeroGPU quota ({asked_s:.0f}s requested vs. {left_s:.0f}s left). "
    message += "Try again in 13:40:00."
    return gr.Error(message, title="ZeroGPU quota exceeded")
