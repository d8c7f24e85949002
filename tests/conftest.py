import os
from pathlib import Path

import pytest

# Nothing in the test suite may reach a model hub: the embedded default model is on disk.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SEED_CSV = ROOT / "assets" / "seed_feedback.csv"


@pytest.fixture
def seed_csv() -> Path:
    return SEED_CSV


@pytest.fixture
def write_file(tmp_path):
    """Write text (in an encoding) or bytes to a file in tmp_path and return its path."""

    def _write(name: str, content, encoding: str = "utf-8") -> Path:
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
        return path

    return _write


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """An empty runs folder for the app (RM_DEMO_RUNS)."""
    root = tmp_path / "runs"
    monkeypatch.setenv("RM_DEMO_RUNS", str(root))
    return root


@pytest.fixture
def started(monkeypatch):
    """The app's start_job replaced by a recorder: the config training would receive, without a process."""
    from rm_demo.app import train_tab
    from rm_demo.runs import RunFolder

    configs = []
    monkeypatch.setattr(train_tab, "start_job", lambda run, **_: configs.append(RunFolder(run).config()))
    return configs


def write_checkpoint(folder: Path, step: int | None = None) -> Path:
    """A checkpoint folder as intact as the Trainer leaves one, as far as `runs.checkpoint_damage` looks:
    its trainer_state.json and a model.safetensors whose header matches its size (tiny weights)."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "trainer_state.json").write_text("{}" if step is None else f'{{"global_step": {step}}}')
    save_file({"w": torch.zeros(4)}, folder / "model.safetensors")
    return folder


def serve_app(tmp: Path, script: str = "app.py", **env_extra):
    """`python <script> --port P` as a user starts it (its own runs folder, offline), once it answers:
    (process, url). Its output goes to tmp/app.log; the caller terminates it."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(
        os.environ, RM_DEMO_RUNS=str(tmp / "runs"), GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", **env_extra
    )
    with (tmp / "app.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, script, "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail("the app did not start:\n" + (tmp / "app.log").read_text()[-3000:])
            time.sleep(0.5)
