"""Every scoring handler of the app, called from a worker thread as gradio calls it, in a process where the
real `spaces` has patched torch as on a ZeroGPU Space (tests/spaces_on_cpu.py). Prints one JSON object:
{endpoint: what came back, as text}. Run by tests/test_zero_gpu_patched.py.

    python tests/zero_gpu_patched_handlers.py RUNS_FOLDER DATA_CSV
"""

import json
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from spaces_on_cpu import SPACE_ENV, stub

os.environ.update(SPACE_ENV)
os.environ["RM_DEMO_RUNS"] = sys.argv[1]
stub()

import spaces  # noqa: E402,F401  (patches torch, as on a Space)
import torch  # noqa: E402

assert torch.cuda.is_available(), "spaces' patching is not on"

from records import leave_record  # noqa: E402

from rm_demo.access import owner_key  # noqa: E402
from rm_demo.app.build import build  # noqa: E402
from rm_demo.app.state import Session  # noqa: E402
from rm_demo.config import TrainConfig  # noqa: E402
from rm_demo.models import resolve_model  # noqa: E402
from rm_demo.runs import RunFolder, prepare_run  # noqa: E402

VISITOR = "v" * 32
runs = Path(sys.argv[1])
run = runs / "a-run"
prepare_run(TrainConfig(eval_fraction=0.3), sys.argv[2], run, owner=owner_key(VISITOR))
shutil.copytree(resolve_model("default"), run / "model")  # a saved model as a run leaves one
leave_record(RunFolder(run), status="completed", final_metrics={}, data={"train_pairs": 1, "eval_pairs": 1})
answers = runs.parent / "answers.csv"
answers.write_text("question,answer\nWhy is the sky blue?,Rayleigh scattering.\nWhy?,Because.\n")

demo = build()
by_name = {fn.api_name or fn.name: fn for fn in demo.fns.values() if fn.fn is not None}
model = str(run / "model")
calls = {
    "compare": [model, "Why is the sky blue?", "Rayleigh scattering.", "It is not.", True, Session(owner=VISITOR)],
    "rank": [model, "Why is the sky blue?", "Rayleigh scattering.\nIt is not.", Session(owner=VISITOR)],
    "explain": [model, "Why is the sky blue?", "Rayleigh scattering.", "It is not.", True, Session(owner=VISITOR)],
    "score_file": [run.name, str(answers), "auto", "auto", Session(owner=VISITOR)],
    "evaluate": [run.name, None, Session(owner=VISITOR)],
    "fill_example": [Session(owner=VISITOR), model],
}
results = {}
with ThreadPoolExecutor(1) as worker:  # gradio runs handlers in its worker threads, never the importing one
    for name, args in calls.items():
        try:
            results[name] = str(worker.submit(by_name[name].fn, *args).result())[:3000]
        except Exception as exc:  # noqa: BLE001 (reported to the test, which fails on it)
            results[name] = f"RAISED {type(exc).__name__}: {exc}"
print(json.dumps(results))
