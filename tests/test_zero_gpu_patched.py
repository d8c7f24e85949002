"""On a ZeroGPU Space the app process never touches CUDA (issue 35): with the real `spaces` package's
patching switched on (SPACES_ZERO_GPU set before `import spaces`, tests/spaces_on_cpu.py), every scoring
handler works from a worker thread. Before the app decided its device once (models.scoring_device), each
of them picked CUDA from spaces' `is_available()` and failed with "Torch not compiled with CUDA enabled"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKSHOP = ROOT / "assets" / "workshop_feedback.csv"


def test_every_scoring_handler_works_from_a_worker_thread_under_spaces_patching(tmp_path):
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))
    )
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "zero_gpu_patched_handlers.py"), str(tmp_path / "runs"), str(WORKSHOP)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(results) == {"compare", "rank", "explain", "score_file", "evaluate", "fill_example"}
    for name, text in results.items():
        assert "RAISED" not in text and "CUDA" not in text and "Could not" not in text, (name, text)
    assert "compare-results" in results["compare"] and "P(A preferred)" in results["compare"]
    assert "answers" in results["rank"] and "best first" in results["rank"]
    assert "Scored **2** answers" in results["score_file"]
    assert "held-out accuracy" in results["evaluate"] or "too few" in results["evaluate"]
    assert "Example:" in results["fill_example"]
