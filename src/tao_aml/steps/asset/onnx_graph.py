"""The inputs and outputs of an ONNX model (names, element types, shapes), read with the standard library.

Steps run where the onnx package is not installed (the TAO containers, the CPU data environment), yet
the model asset's DeepStream and Triton configs must name the tensors the exported model really has.
An ONNX file is one protobuf `ModelProto` (onnx/onnx.proto); only these field numbers are read:
ModelProto.graph = 7; GraphProto.initializer = 5, input = 11, output = 12; TensorProto.name = 8;
ValueInfoProto.name = 1, type = 2; TypeProto.tensor_type = 1; TypeProto.Tensor.elem_type = 1,
shape = 2; TensorShapeProto.dim = 1; Dimension.dim_value = 1, dim_param = 2. Graph inputs that are
initializers (older exporters list weights as inputs) are not model inputs.
"""

from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple, Union

from tao_aml.steps.common import StepError

# TensorProto.DataType numbers (onnx.proto) for the element types a detector uses.
ELEM_TYPES = {1: "FLOAT", 2: "UINT8", 3: "INT8", 6: "INT32", 7: "INT64", 10: "FLOAT16", 11: "DOUBLE"}

Dim = Union[int, str, None]  # a fixed size, a named dynamic size, or unknown


class Tensor(NamedTuple):
    name: str
    elem_type: str
    shape: Tuple[Dim, ...]


class Graph(NamedTuple):
    inputs: Tuple[Tensor, ...]
    outputs: Tuple[Tensor, ...]

    def output(self, name: str) -> Optional[Tensor]:
        return next((t for t in self.outputs if t.name == name), None)


class _Malformed(Exception):
    pass


def _varint(data: bytes, pos: int) -> Tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise _Malformed("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> Iterator[Tuple[int, Union[int, bytes]]]:
    """(field number, value) of one message: varints as ints, length-delimited fields as bytes."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _Malformed("field number 0")
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, value
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise _Malformed("field {} runs past the end".format(number))
            yield number, data[pos:pos + length]
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise _Malformed("wire type {} of field {}".format(wire, number))


def _first(data: bytes, number: int) -> Optional[Union[int, bytes]]:
    return next((value for field, value in _fields(data) if field == number), None)


def _text(value: Optional[Union[int, bytes]]) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else ""


def _tensor(info: bytes) -> Tensor:
    name = _text(_first(info, 1))
    type_proto = _first(info, 2)
    tensor = _first(type_proto, 1) if isinstance(type_proto, bytes) else None
    if not isinstance(tensor, bytes):
        return Tensor(name, "UNKNOWN", ())
    elem = _first(tensor, 1)
    shape_proto = _first(tensor, 2)
    dims: List[Dim] = []
    if isinstance(shape_proto, bytes):
        for field, dim in _fields(shape_proto):
            if field != 1 or not isinstance(dim, bytes):
                continue
            value, param = _first(dim, 1), _first(dim, 2)
            dims.append(value if isinstance(value, int) else (_text(param) or None))
    return Tensor(name, ELEM_TYPES.get(elem if isinstance(elem, int) else -1, "UNKNOWN"), tuple(dims))


def read(path: str) -> Graph:
    """The graph's inputs and outputs; StepError naming the file when it is not an ONNX model."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise StepError("cannot read ONNX model {}: {}".format(path, err)) from None
    try:
        graph = _first(data, 7)
        if not isinstance(graph, bytes):
            raise _Malformed("no graph")
        initializers = set()
        inputs: List[Tensor] = []
        outputs: List[Tensor] = []
        for field, value in _fields(graph):
            if field == 5 and isinstance(value, bytes):
                initializers.add(_text(_first(value, 8)))
            elif field == 11 and isinstance(value, bytes):
                inputs.append(_tensor(value))
            elif field == 12 and isinstance(value, bytes):
                outputs.append(_tensor(value))
    except _Malformed as err:
        raise StepError("{} is not an ONNX model ({})".format(path, err)) from None
    model_inputs = tuple(t for t in inputs if t.name not in initializers)
    if not model_inputs or not outputs:
        raise StepError("{} is not an ONNX model with inputs and outputs".format(path))
    return Graph(model_inputs, tuple(outputs))


def describe(graph: Graph) -> Dict[str, List[Dict[str, object]]]:
    return {kind: [{"name": t.name, "type": t.elem_type, "shape": list(t.shape)} for t in tensors]
            for kind, tensors in (("inputs", graph.inputs), ("outputs", graph.outputs))}
