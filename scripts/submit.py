"""`python scripts/submit.py facenet --dry-run ...` is `tao-aml submit facenet --dry-run ...`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tao_aml.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["submit", *sys.argv[1:]]))
