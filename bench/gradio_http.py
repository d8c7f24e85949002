"""A light visitor for load benchmarks: gradio's own queue protocol over HTTP, as a browser speaks it.

`gradio_client` polls: each call in flight wakes a thread every 50 ms to check for cancellation and
another every 50 ms for messages, so 30 simulated visitors on the app's own machine took twice the
app's CPU time (bench_load.py, 2026-11-29) and added up to 50 ms to each answer. A browser costs the
app's machine nothing. This client does what the page does (`POST queue/join`, then read the
session's event stream until the event completes) with one blocking HTTP connection per visitor.

    visitor = Visitor(url, config)            # config: App.config(url), fetched once
    outputs = visitor.call("compare", "default", "Q", "A", "B", True)
"""

from __future__ import annotations

import json
import queue
import threading
import uuid

import httpx


class CallError(RuntimeError):
    pass


def app_config(url: str) -> dict:
    return httpx.get(url.rstrip("/") + "/config", timeout=30).json()


class Visitor:
    """One browser session: its own session hash (so the app's gr.State is its own) and, like the page,
    one event stream for all its events in flight, opened when an event is sent and closed by the app
    when none is left."""

    def __init__(self, url: str, config: dict, timeout_s: float = 300):
        self.base = url.rstrip("/") + config.get("api_prefix", "/gradio_api")
        self.session_hash = uuid.uuid4().hex[:11]
        self.http = httpx.Client(timeout=timeout_s)
        self.timeout_s = timeout_s
        kinds = {c["id"]: c.get("type") for c in config["components"]}
        # api_name -> (fn_index, for each input: True where the page sends nothing, the server keeps it)
        self.endpoints = {
            d["api_name"]: (d["id"], [kinds.get(i) == "state" for i in d["inputs"]])
            for d in config["dependencies"]
            if d.get("api_name")
        }
        self.lock = threading.Lock()
        self.waiting: dict[str, queue.Queue] = {}  # event id -> where its answer goes
        self.early: dict[str, dict] = {}  # answers that came before their caller was waiting
        self.reader: threading.Thread | None = None

    def call(self, api_name: str, *values) -> list:
        fn_index, kept = self.endpoints[api_name]
        given = iter(values)
        data = [None if server_side else next(given, None) for server_side in kept]
        answer: queue.Queue = queue.Queue()
        with self.lock:
            joined = self.http.post(
                self.base + "/queue/join",
                json={
                    "data": data,
                    "fn_index": fn_index,
                    "session_hash": self.session_hash,
                    "event_data": None,
                    "trigger_id": None,
                },
            )
            joined.raise_for_status()
            event_id = joined.json()["event_id"]
            if event_id in self.early:
                answer.put(self.early.pop(event_id))
            else:
                self.waiting[event_id] = answer
            if self.reader is None:
                self.reader = threading.Thread(target=self._read, daemon=True)
                self.reader.start()
        message = answer.get(timeout=self.timeout_s)
        if message is None:
            raise CallError(f"{api_name}: the event stream ended before the answer")
        if not message.get("success", False):
            raise CallError(str(message.get("output", {}).get("error") or message)[:300])
        return message["output"]["data"]

    def _read(self) -> None:
        """The session's event stream: each completed event to its caller, until the app closes it."""
        try:
            with self.http.stream("GET", self.base + "/queue/data", params={"session_hash": self.session_hash}) as s:
                for line in s.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    message = json.loads(line[5:])
                    if message.get("msg") == "close_stream":
                        break
                    if message.get("msg") != "process_completed":
                        continue
                    with self.lock:
                        box = self.waiting.pop(message.get("event_id"), None)
                        if box is None:
                            self.early[message.get("event_id")] = message
                    if box is not None:
                        box.put(message)
        except httpx.HTTPError:  # the app went away: every call in flight fails, none waits for ever
            with self.lock:
                waiting, self.waiting, self.reader = list(self.waiting.values()), {}, None
            for box in waiting:
                box.put(None)
            return
        with self.lock:
            self.reader = None
            if self.waiting:  # events still in flight: open the stream again, as the page does
                self.reader = threading.Thread(target=self._read, daemon=True)
                self.reader.start()

    def close(self) -> None:
        self.http.close()
