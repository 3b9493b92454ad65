"""NGC's model API simulated on 127.0.0.1, so a rehearsal's `pretrained` step runs its real code with no network.

The step (steps/data/ngc_model.py) lists a model version's files at
`/v2/models/{org}[/{team}]/{name}/versions/{version}/files` (the `modelFiles` form, each with its size) and
fetches each from `.../files/{path}`; the real API then redirects to signed storage, here the file is answered
directly. The files are placeholders: no TAO task reads the weights of a simulated model.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tao_aml.steps.data.ngc_model import ModelRef

# The model file of a version, as NGC names it: facenet:unpruned_v2.0 and bodyposenet:trainable_v1.0 hold
# model.tlt (shared/facts/tao5.md), pretrained_detectnet_v2:<arch> the backbone <arch>.hdf5 (the TAO 5.0
# detectnet_v2 notebook's pretrained_model_file: pretrained_detectnet_v2_vresnet18/resnet18.hdf5).
MODEL_FILES = {"pretrained_detectnet_v2": "{version}.hdf5"}
DEFAULT_FILE = "model.tlt"
WEIGHTS = b"simulated pretrained weights (tao-aml rehearse): not a model\n"


def model_files(model: str) -> dict[str, bytes]:
    """The simulated files of an NGC model version, org/team/name:version."""
    ref = ModelRef(model)
    return {MODEL_FILES.get(ref.name, DEFAULT_FILE).format(version=ref.version): WEIGHTS}


@contextmanager
def serving(models: list[str]) -> Iterator[str]:
    """An NGC API root (http://127.0.0.1:PORT) serving these model versions, for TAO_AML_NGC_API_BASE."""
    routes: dict[str, tuple[bytes, str]] = {}
    for model in models:
        listing = urllib.parse.urlsplit(ModelRef(model).files_url("")).path
        files = model_files(model)
        document = {"modelFiles": [{"path": rel, "sizeInBytes": len(data)} for rel, data in files.items()],
                    "paginationInfo": {"index": 0, "size": len(files), "totalPages": 1},
                    "requestStatus": {"statusCode": "SUCCESS"}}
        routes[listing] = (json.dumps(document).encode(), "application/json")
        routes.update({f"{listing}/{urllib.parse.quote(rel)}": (data, "application/octet-stream")
                       for rel, data in files.items()})

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's name
            """Quiet: the step logs what it fetched."""

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body, kind = routes.get(urllib.parse.urlsplit(self.path).path, (b"not found", "text/plain"))
            self.send_response(200 if kind != "text/plain" else 404)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="simulated-ngc", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
