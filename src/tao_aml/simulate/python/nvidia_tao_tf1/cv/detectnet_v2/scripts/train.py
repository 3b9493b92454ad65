"""TAO 5.0 simulated: the detectnet_v2 train runner module (see tao_aml/simulate/tao_standin.py: run_runner)."""
import os
import sys

# The package this file belongs to (python/nvidia_tao_tf1/cv/detectnet_v2/scripts/ -> the folder holding tao_aml).
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), *[".."] * 7)))
from tao_aml.simulate.tao_standin import run_runner  # noqa: E402

run_runner("detectnet_v2")
