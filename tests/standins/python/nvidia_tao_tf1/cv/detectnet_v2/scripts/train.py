"""Stand-in for TAO 5.0's detectnet_v2 train runner module (see tests/standins/tao_standin.py: run_runner)."""
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), *[".."] * 5)))
from tao_standin import run_runner  # noqa: E402

run_runner("detectnet_v2")
