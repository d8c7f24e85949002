"""`python app.py` as a ZeroGPU Space runs it, with `spaces.GPU` played by the stand-in (no GPU or scheduler here).

python tests/zero_gpu_app.py --port 7861
"""

import os
import sys

import spaces  # imported before SPACES_ZERO_GPU is set: its own ZeroGPU machinery stays off
from zero_gpu_stand_in import StandInGPU

spaces.GPU = StandInGPU()
os.environ["SPACES_ZERO_GPU"] = "true"  # what Hugging Face sets on a ZeroGPU Space: rm_demo's settings read it

from rm_demo.app import main  # noqa: E402

if __name__ == "__main__":
    main(sys.argv[1:])
