"""Which folder a step reads its spec templates from.

The templates ship inside the package, one folder per pipeline (tao_aml/templates/facenet/,
tao_aml/templates/bodypose/), so every component's code snapshot and every installed copy has them.
A step given --spec_dir (the component's `specs` input, connected) reads that folder. Without it,
the step reads the shipped folder that holds its own template: template file names are unique
across the shipped folders, so the name alone says which folder, and every other template the
step reads (a bpnet step's coco spec and pose config) comes from that same folder. A name that is
in no shipped folder, or in several, is refused with what is there.
"""

import os
from typing import Optional

from tao_aml.steps.common import StepError

# tao_aml/templates/, two levels above this package (tao_aml/steps/specs/).
SHIPPED = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "templates")


def folder(spec_dir: Optional[str], spec_file: str, shipped: str = SHIPPED) -> str:
    """`spec_dir` when given, else the one folder of `shipped` that holds `spec_file`."""
    if spec_dir is not None:
        return spec_dir
    if not os.path.isdir(shipped):
        raise StepError("no spec templates are shipped in {}: reinstall tao-aml, or connect the specs input "
                        "(--spec_dir)".format(shipped))
    folders = sorted(name for name in os.listdir(shipped) if os.path.isdir(os.path.join(shipped, name)))
    holding = [name for name in folders if os.path.isfile(os.path.join(shipped, name, spec_file))]
    if len(holding) == 1:
        return os.path.join(shipped, holding[0])
    if holding:
        raise StepError("spec template {} is in several shipped template folders of {} ({}): connect the specs "
                        "input (--spec_dir) to the one to use".format(spec_file, shipped, ", ".join(holding)))
    listing = "; ".join("{}/: {}".format(name, ", ".join(sorted(os.listdir(os.path.join(shipped, name)))))
                        for name in folders)
    raise StepError("spec template {} not found in the templates shipped in {} ({}): name one of them, or "
                    "connect the specs input (--spec_dir)".format(spec_file, shipped, listing or "none"))
