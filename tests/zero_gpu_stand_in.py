"""A stand-in for `spaces.GPU` on a machine without ZeroGPU, doing what its generator worker does.

Read from `spaces` 0.51 (zero/wrappers.py, `generator_function_wrapper` and `Worker`): the first call
forks a worker process, and later calls reuse it (one worker per GPU, kept across calls, so module state
of one slice is there for the next); the arguments go to it pickled; the worker iterates the generator
and puts each yielded value on a queue, pickled (a value that does not pickle fails the call); after
each value it checks a stop event and closes the generator if it is set; the app's side yields what
comes back and, closed itself (the page went away), sets the stop event and waits for the worker's end
marker before it returns. An exception in the worker reaches the app as spaces lets it: a gradio error
titled "ZeroGPU worker error" whose message is the exception's class name alone (its traceback printed),
and that worker is not kept. A refused call (quota) raises a gradio error titled so before anything
runs. Only the GPU and the scheduling server are left out.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import pickle
import queue
import traceback

import gradio as gr


class _Worker:
    """One forked process that runs one task after another, as spaces' Worker does."""

    def __init__(self, task):
        # spaces' own helpers name the app's sockets on the gradio server's port: the worker closes its
        # copies first (worker_init), or a kept worker would hold visitors' connections open.
        from spaces.zero.gradio import get_server_port
        from spaces.zero.utils import get_process_connections

        port = get_server_port()
        fds = [conn.fd for conn in get_process_connections() if conn.port == port] if port else []
        context = multiprocessing.get_context("fork")
        self.calls, self.results, self.stop = context.Queue(), context.Queue(), context.Event()
        self.process = context.Process(
            target=_worker_loop, args=(task, self.calls, self.results, self.stop, fds), daemon=True
        )
        self.process.start()

    def close(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=10)


class StandInGPU:
    """`spaces.GPU` as a ZeroGPU Space has it: `StandInGPU()(duration=...)(fn)`, recording each call."""

    def __init__(self, refuse: list[Exception] | None = None):
        self.durations: list[float] = []  # what each call asked for
        self.refuse = list(refuse or [])  # errors to raise, one per call, before the rest are granted
        self.payloads: list = []  # every value that crossed, as unpickled on the app's side
        self.workers: dict = {}  # task -> its worker, kept across calls
        self.worker_pids: list[int] = []  # the worker's pid at each call

    def __call__(self, task=None, *, duration=None, size=None):
        if callable(task):
            return self._wrap(task, duration)
        return lambda fn: self._wrap(fn, duration)

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()
        self.workers.clear()

    def _worker_for(self, task) -> _Worker:
        worker = self.workers.get(task)
        if worker is None or not worker.process.is_alive():
            worker = self.workers[task] = _Worker(task)
        return worker

    def _wrap(self, task, duration):
        @functools.wraps(task)
        def handler(*args, **kwargs):
            asked = duration(*args, **kwargs) if callable(duration) else duration
            if self.refuse:
                raise self.refuse.pop(0)
            self.durations.append(asked)
            worker = self._worker_for(task)
            self.worker_pids.append(worker.process.pid)
            worker.stop.clear()
            worker.calls.put(pickle.dumps((args, kwargs)))  # the arguments cross pickled, as in spaces
            try:
                while True:
                    kind, value = worker.results.get(timeout=600)
                    if kind == "end":
                        return
                    if kind == "error":  # as spaces: the traceback printed, the class name alone raised,
                        print(value)  # and the worker not kept for the next call
                        self.workers.pop(task, None)
                        raise gr.Error(value.splitlines()[-1].split(":")[0], title="ZeroGPU worker error")
                    payload = pickle.loads(value)
                    self.payloads.append(payload)
                    yield payload
            except GeneratorExit:
                worker.stop.set()  # the worker closes the generator after its next value
                # ... and, as spaces does (its handler's ThreadPoolExecutor block), the close returns only
                # once the worker has ended the task: the rest of its step and its checkpoint included.
                while worker.results.get(timeout=600)[0] not in ("end", "error"):
                    pass
                raise

        return handler


def _worker_loop(task, calls, results, stop, fds: list[int]) -> None:
    for fd in fds:  # as spaces' worker_init does, first thing
        try:
            os.close(fd)
        except OSError:
            pass
    parent = os.getppid()
    while True:
        try:
            sent = calls.get(timeout=1)
        except queue.Empty:
            if os.getppid() != parent:  # the app is gone (a SIGTERM runs no atexit): so is its kept worker
                return
            continue
        args, kwargs = pickle.loads(sent)
        generator = task(*args, **kwargs)
        try:
            for value in generator:
                if stop.is_set():
                    generator.close()
                    break
                results.put(("value", pickle.dumps(value)))  # a value that does not pickle fails here
        except Exception:
            results.put(("error", traceback.format_exc()))
            continue
        results.put(("end", None))


def quota_error(left_s: float = 0, asked_s: float = 60) -> gr.Error:
    """The refusal spaces raises for a visitor over quota (client.schedule)."""
    message = f"You have exceeded your free ZeroGPU quota ({asked_s:.0f}s requested vs. {left_s:.0f}s left). "
    message += "Try again in 13:40:00."
    return gr.Error(message, title="ZeroGPU quota exceeded")
