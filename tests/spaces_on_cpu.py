"""The real `spaces` package with its ZeroGPU patching switched on, on a CPU build of torch.

A ZeroGPU Space sets SPACES_ZERO_GPU (and SPACES_ZERO_DEVICE_API_URL) before `import spaces`; spaces then
patches torch at import: `torch.cuda.is_available()` says True in every thread, CUDA calls are taken on the
importing thread, and a GPU is attached only inside a `spaces.GPU` call. On a CPU build three things spaces
reads at import are missing; `stub()` supplies them and nothing else, so the patching itself runs as on a
Space:

- `torch.version.cuda` (None on a CPU build): spaces picks its cudart constants by the CUDA major version;
- `torch._C._cuda_init` (absent): spaces keeps a reference to it before replacing it;
- `torch.cuda._is_in_bad_fork` (a lambda on a CPU build, which its fork-pool check cannot pickle).

Use: call `stub()` after setting the variables and before `import spaces`, in a process of its own (the
patching cannot be undone).
"""

import os

import torch

SPACE_ENV = {"SPACES_ZERO_GPU": "true", "SPACES_ZERO_DEVICE_API_URL": "http://127.0.0.1:9/"}


def not_in_bad_fork() -> bool:
    return False


def no_cuda_init() -> None:
    raise RuntimeError("Torch not compiled with CUDA enabled")


def stub() -> None:
    assert os.environ.get("SPACES_ZERO_GPU") == "true", "set SPACE_ENV before stubbing"
    torch.version.cuda = torch.version.cuda or "12.4"
    if not hasattr(torch._C, "_cuda_init"):
        torch._C._cuda_init = no_cuda_init
    torch.cuda._is_in_bad_fork = not_in_bad_fork  # a module-level function: picklable by reference
