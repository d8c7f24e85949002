"""Who is asking (issue 42): only ids this app issued are taken back, limits count per address as well as per
id, and a request body over the cap is refused before gradio parses it (a real server)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import serve_app

from rm_demo.access import owner_key
from rm_demo.app import data_tab, facilitator_tab, identity, train_tab
from rm_demo.app.state import DataSettings, Session
from rm_demo.app.train_form import TrainForm

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def public_app(tmp_path, monkeypatch):
    monkeypatch.setenv("RM_DEMO_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("RM_DEMO_PUBLIC", "1")
    monkeypatch.setenv("RM_DEMO_FACILITATOR_SECRET", "open sesame")
    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.delenv("RM_DEMO_TRUST_PROXY", raising=False)
    return tmp_path


def _request(host: str, forwarded: str | None = None):
    headers = {"x-forwarded-for": forwarded} if forwarded else {}
    return SimpleNamespace(client=SimpleNamespace(host=host), headers=headers)


def test_only_an_id_this_app_signed_is_taken_back(public_app):
    issued = identity.mint_id()
    assert identity.issued_id(issued) == issued
    raw, signature = issued.split(".")
    forged = f"{raw}.{'0' * 16}" if signature != "0" * 16 else f"{raw}.{'1' * 16}"
    for junk in (forged, "v" * 20, "x" * 20_000_000, None, 5, ["a"], issued.upper(), issued + "0"):
        assert identity.issued_id(junk) is None, junk
    # A page that kept a bare id from before ids were signed keeps its runs: the key ignores the signature.
    legacy = "0123456789abcdef" * 2
    upgraded = identity.issued_id(legacy)
    assert upgraded.startswith(legacy + ".") and owner_key(upgraded) == owner_key(legacy)


def test_the_page_load_replaces_any_id_a_client_made_up(public_app):
    from rm_demo.app.build import build

    load = next(fn for fn in build().fns.values() if fn.api_name == "load")
    ids = set()
    for sent in ("x" * 16, "x" * 20_000_000, "", None):
        session = load.fn(Session(), sent, _request("10.0.0.7"))[0]
        assert identity.issued_id(session.owner) == session.owner and session.owner != sent
        assert session.address == identity.client_address(_request("10.0.0.7"))
        ids.add(session.owner)
    assert len(ids) == 4  # each made-up id got its own new one
    again = load.fn(Session(), session.owner, _request("10.0.0.7"))[0]
    assert again.owner == session.owner  # the id it issued comes back as it was


def test_the_forwarded_address_is_trusted_only_behind_a_proxy(public_app, monkeypatch):
    spoofed = _request("127.0.0.1", forwarded="203.0.113.9")
    assert identity.client_address(spoofed) == identity.client_address(_request("127.0.0.1"))
    monkeypatch.setenv("RM_DEMO_TRUST_PROXY", "1")
    assert identity.client_address(spoofed) == identity.client_address(_request("203.0.113.9"))


def test_a_script_switching_ids_meets_the_per_address_limit(public_app, seed_csv, started):
    messages = []
    for _ in range(6):  # six "visitors" from one address
        session = Session(owner=identity.mint_id(), address="same-address")
        session = data_tab.load_data(session, str(seed_csv), "seed.csv", DataSettings())[0]
        messages.append(train_tab.start_run(session, TrainForm())[1])
    assert sum(m.startswith("Started") for m in messages) == 4 and len(started) == 4
    assert "runs from your network address" in messages[-1] and "RM_DEMO_RUNS_PER_ADDRESS" in messages[-1]
    other = data_tab.load_data(
        Session(owner=identity.mint_id(), address="elsewhere"), str(seed_csv), "s.csv", DataSettings()
    )[0]
    assert train_tab.start_run(other, TrainForm())[1].startswith("Started")  # another address is not held


def test_facilitator_guesses_are_throttled_per_address_too(public_app):
    facilitator_tab.guesses = facilitator_tab.GuessThrottle()
    for _ in range(3):  # a new id before each guess
        facilitator_tab.unlock(Session(owner=identity.mint_id(), address="guesser"), "wrong")
    _, message = facilitator_tab.unlock(Session(owner=identity.mint_id(), address="guesser"), "open sesame")
    assert "Too many wrong guesses" in message
    session, message = facilitator_tab.unlock(Session(owner=identity.mint_id(), address="facilitator"), "open sesame")
    assert session.facilitator and "Unlocked" in message


def _post(url: str, body: bytes, content_type="application/json") -> int:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _status_of_declared_body(port: int, path: str, length: int) -> int:
    """The status a server answers to a request declaring a `length`-byte body, after its first kilobyte
    (a server that refuses it does not wait for the rest, and may close the connection on the sender)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        conn.sendall(head.encode() + b"{" + b" " * 1023)
        return int(conn.recv(4096).split(b" ")[1])


def test_a_real_server_refuses_an_oversized_body_before_parsing_it(tmp_path):
    proc, url = serve_app(tmp_path, RM_DEMO_PUBLIC="1")
    url, port = url.rstrip("/"), int(url.rstrip("/").rsplit(":", 1)[1])
    try:
        assert _status_of_declared_body(port, "/gradio_api/queue/join", 20_000_000) == 413
        small = json.dumps({"session_hash": "x" * 100}).encode()
        assert _post(f"{url}/gradio_api/queue/join", small) == 422  # read and answered by gradio itself
        assert urllib.request.urlopen(url, timeout=10).status == 200  # still serving
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "Traceback" not in (tmp_path / "app.log").read_text()
