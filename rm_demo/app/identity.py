"""Who is asking: a visitor id the server issued and signed, and the network address a request came from.

A page's id is kept in its browser (gr.BrowserState) and sent back by the page load (`/load`); that is the
one place a client hands the app an id, and only an id this app signed is taken back. Anything else (a
string a script made up, 20 MB of it) gets a new id. A script can still ask for new ids, so the limits that
count (runs in the queue, wrong facilitator guesses) are kept per address as well as per id.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid

from rm_demo.app.state import runs_root
from rm_demo.settings import current

# "<32 hex>.<16 hex>": a uuid4 and its signature. Ids from before signing were the bare uuid4 hex.
SIGNED_ID = re.compile(r"[0-9a-f]{32}\.[0-9a-f]{16}")
LEGACY_ID = re.compile(r"[0-9a-f]{32}")
MAX_ID_CHARS = 64


def browser_secret() -> str:
    """The key that signs ids and that gradio encrypts the browser's stored id with: the same across
    restarts, so a visitor keeps their runs after the app restarts (RM_DEMO_SECRET, else a file kept
    beside the runs)."""
    if current().browser_secret:
        return current().browser_secret
    path = runs_root() / ".browser_secret"
    try:
        return path.read_text().strip()
    except OSError:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(16))
        path.chmod(0o600)
        return path.read_text().strip()


def _signature(raw: str) -> str:
    return hmac.new(browser_secret().encode(), f"rm_demo-visitor:{raw}".encode(), hashlib.sha256).hexdigest()[:16]


def mint_id() -> str:
    raw = uuid.uuid4().hex
    return f"{raw}.{_signature(raw)}"


def issued_id(value) -> str | None:
    """`value` as this app's id if it is one: signed here, or a bare id of the kind pages kept before ids
    were signed (signed now, so that a browser keeps its runs). Anything else is None."""
    if not isinstance(value, str) or len(value) > MAX_ID_CHARS:
        return None
    if SIGNED_ID.fullmatch(value):
        raw, signature = value.split(".")
        return value if hmac.compare_digest(signature, _signature(raw)) else None
    if LEGACY_ID.fullmatch(value):
        return f"{value}.{_signature(value)}"
    return None


def client_address(request) -> str:
    """A short one-way hash of the address a request came from ("" when gradio gives none). Behind a
    Space's proxy every request comes from the proxy: its X-Forwarded-For names the visitor, and is
    trusted only where a proxy sets it (a Space, or RM_DEMO_TRUST_PROXY=1)."""
    host = ""
    if request is not None:
        if current().trust_proxy:
            forwarded = (request.headers or {}).get("x-forwarded-for", "")
            host = forwarded.split(",")[0].strip()
        if not host and getattr(request, "client", None) is not None:
            host = request.client.host or ""
    if not host:
        return ""
    return hashlib.sha256(f"rm_demo-address:{host}".encode()).hexdigest()[:16]
