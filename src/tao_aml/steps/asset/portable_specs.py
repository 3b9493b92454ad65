"""Make the specs shipped in a model asset self-contained: no path of the node that wrote them.

Each spec a step saved names the paths of its own node (mounts, local data roots). In the model asset
those paths mean nothing, so every path field is rewritten: to a file of the asset where the spec
refers to one (the model, another spec), to a relative data path with the layout the pipeline used
(`data/...`), or left empty with a note. The result is then checked as the tool that would read it
checks it. The rules are each family's (detectnet_v2/portable_spec.py for protobuf-text specs,
bpnet/portable_spec.py for YAML/JSON ones); this module picks the family by file type.
"""

import os
from typing import Dict

from tao_aml.steps.bpnet import portable_spec as bpnet_portable
from tao_aml.steps.detectnet_v2 import portable_spec as detectnet_v2_portable


def make_portable(spec_folder: str, asset_dir: str, origins: Dict[str, str]) -> Dict[str, str]:
    """Rewrite every spec in `spec_folder` in place; {file name: what was done to its paths}.

    `origins` names the file each spec was copied from, for the error messages."""
    notes: Dict[str, str] = {}
    if not os.path.isdir(spec_folder):
        return notes
    for name in sorted(os.listdir(spec_folder)):
        path = os.path.join(spec_folder, name)
        origin = origins.get(name, path)
        if name.endswith(".txt"):
            notes[name] = detectnet_v2_portable.make_portable(path, origin)[1]
        elif name.endswith((".yaml", ".yml", ".json")):
            notes[name] = bpnet_portable.make_portable(path, asset_dir, origin)[1]
    bpnet_portable.check_loads(spec_folder, asset_dir, origins)
    return notes
