"""Triton's own model-configuration schema (model_config.proto), as the tritonclient package ships it.

tritonclient's grpc/model_config_pb2.py is generated code that needs only protobuf; importing it as
`tritonclient.grpc.model_config_pb2` would run tritonclient/grpc/__init__.py, which needs grpcio (the
[grpc] extra). Loading the one file by path keeps the test install light: `pip install tritonclient`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import tritonclient
from google.protobuf import text_format

_PATH = Path(tritonclient.__file__).parent / "grpc" / "model_config_pb2.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("triton_model_config_pb2", _PATH)
    assert spec is not None and spec.loader is not None, _PATH
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


model_config_pb2 = _load()


def parse(text: str):  # type: ignore[no-untyped-def]
    """A config.pbtxt as Triton reads it: text format of inference.ModelConfig (unknown fields refused)."""
    return text_format.Parse(text, model_config_pb2.ModelConfig())
