"""`python -m tao_aml.cli ...` is `tao-aml ...`."""

import sys

from tao_aml.cli import main

sys.exit(main())
