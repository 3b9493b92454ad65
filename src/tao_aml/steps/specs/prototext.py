"""Protobuf text format (the format of TAO spec files) as an ordered, editable tree.

`parse` reads a spec into a `Message`: an ordered list of `(name, value)` pairs, so repeated fields,
map entries and field order survive an edit. `format` writes canonical text that `parse` reads back
to an equal tree and that protobuf's own text parser reads to the same values.

Paths name fields in a tree: `dataset_config.data_sources[0].tfrecords_path`. A segment may carry an
index (`[0]`) or, for TAO's map-like repeated messages, a key (`[face]` or `["face"]`) matched against
the entry's `key` field, else its `name` field (cost_function_config.target_classes).
"""

import copy
import math
import re
from typing import Iterator, List, NamedTuple, Optional, Tuple, Union

from tao_aml.steps.common import StepError


class Enum(NamedTuple):
    """An enum identifier as written in a spec (`DBSCAN`); its meaning comes from the schema."""

    ident: str


Value = Union[int, float, bool, str, Enum, "Message"]


class Segment(NamedTuple):
    """One step of a path: a field name, optionally narrowed to one entry by index or by key."""

    name: str
    index: Optional[int] = None
    key: Optional[str] = None

    def __str__(self) -> str:
        if self.index is not None:
            return f"{self.name}[{self.index}]"
        if self.key is not None:
            return f"{self.name}[{_quote(self.key)}]"
        return self.name


_SEGMENT = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)(?:\[(?:(\d+)|"([^"]*)"|([^\[\]"]+))\])?$')


def parse_path(path: str) -> List[Segment]:
    """Split `a.b[0].c` / `a.b[face].c` into segments; StepError if it is not a field path."""
    segments = []
    for part in _split_path(path):
        match = _SEGMENT.match(part)
        if not match:
            raise StepError(
                f"bad field path {path!r}: expected names joined by '.', each optionally followed by "
                "[index] or [key], e.g. dataset_config.data_sources[0].tfrecords_path"
            )
        name, index, quoted, bare = match.groups()
        key = quoted if quoted is not None else bare
        segments.append(Segment(name, int(index) if index is not None else None, key))
    return segments


def _split_path(path: str) -> List[str]:
    # Dots inside a [key] belong to the key (class names such as "traffic.sign" are legal).
    parts, depth, current = [], 0, []
    for char in path:
        if char == "." and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        depth += {"[": 1, "]": -1}.get(char, 0)
        current.append(char)
    parts.append("".join(current))
    return parts


def format_path(segments: List[Segment]) -> str:
    return ".".join(str(segment) for segment in segments)


def entry_key(entry: "Message") -> Optional[str]:
    """The key a map-like entry is known by: its `key` field, else its `name` field."""
    for field in ("key", "name"):
        values = [value for name, value in entry.fields if name == field]
        if len(values) == 1 and isinstance(values[0], str):
            return values[0]
    return None


class Message:
    """A message: ordered `(name, value)` pairs; a repeated field is several pairs of one name."""

    def __init__(self, fields: Optional[List[Tuple[str, Value]]] = None) -> None:
        self.fields = list(fields or [])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and self.fields == other.fields

    def __repr__(self) -> str:
        return f"Message({self.fields!r})"

    def copy(self) -> "Message":
        return copy.deepcopy(self)

    def items(self) -> List[Tuple[str, Value]]:
        return list(self.fields)

    def values(self, name: str) -> List[Value]:
        """Every value of field `name` directly in this message, in order."""
        return [value for field, value in self.fields if field == name]

    def add(self, path: str, value: Value) -> None:
        """Append one more value for the last field of `path` (messages on the way are created)."""
        segments = parse_path(path)
        parent = self._walk(segments[:-1], create=True, path=path)
        last = segments[-1]
        if last.index is not None or last.key is not None:
            raise StepError(f"add({path!r}): the last segment appends and takes no [index] or [key]")
        parent.fields.append((last.name, value))

    def get(self, path: str) -> Value:
        """The value at `path`; StepError when it is absent or ambiguous."""
        segments = parse_path(path)
        parent = self._walk(segments[:-1], create=False, path=path)
        position = parent._position(segments[-1], path, create=False)
        return parent.fields[position][1]

    def get_all(self, path: str) -> List[Value]:
        """Every value of the last field of `path` ([] when it or a message on the way is absent)."""
        segments = parse_path(path)
        parent = self._walk_existing(segments[:-1], path)
        return [] if parent is None else parent.values(segments[-1].name)

    def has(self, path: str) -> bool:
        try:
            self.get(path)
        except StepError:
            return False
        return True

    def set(self, path: str, value: Value) -> None:
        """Set the field at `path`, creating it and the messages on the way when absent."""
        segments = parse_path(path)
        parent = self._walk(segments[:-1], create=True, path=path)
        last = segments[-1]
        position = parent._position(last, path, create=True)
        if position < 0:
            parent.fields.append((last.name, value))
        else:
            parent.fields[position] = (last.name, value)

    def remove(self, path: str) -> int:
        """Remove the field at `path` (every entry when no index/key is given); returns how many."""
        segments = parse_path(path)
        parent = self._walk_existing(segments[:-1], path)
        if parent is None:
            return 0
        last = segments[-1]
        if last.index is None and last.key is None:
            before = len(parent.fields)
            parent.fields = [(name, value) for name, value in parent.fields if name != last.name]
            return before - len(parent.fields)
        position = parent._position(last, path, create=False)
        del parent.fields[position]
        return 1

    def replace(self, name: str, values: List[Value]) -> None:
        """Make `values` the entries of field `name`, where its first entry was (else at the end)."""
        positions = [i for i, (field, _) in enumerate(self.fields) if field == name]
        at = positions[0] if positions else len(self.fields)
        kept = [pair for pair in self.fields if pair[0] != name]
        at -= sum(1 for i in positions if i < at)
        kept[at:at] = [(name, value) for value in values]
        self.fields = kept

    def find_keyed(self, path: str, key: str, key_field: str = "key") -> Optional["Message"]:
        """The entry of a map-like repeated message whose `key_field` equals `key`, or None."""
        for entry in self.get_all(path):
            if isinstance(entry, Message) and key in entry.values(key_field):
                return entry
        return None

    def _walk(self, segments: List[Segment], create: bool, path: str) -> "Message":
        node = self
        for depth, segment in enumerate(segments):
            position = node._position(segment, path, create)
            if position < 0:
                node.fields.append((segment.name, Message()))
                position = len(node.fields) - 1
            value = node.fields[position][1]
            if not isinstance(value, Message):
                raise StepError(
                    f"{path}: {format_path(segments[: depth + 1])} is a value "
                    f"({_literal(value)}), not a message"
                )
            node = value
        return node

    def _walk_existing(self, segments: List[Segment], path: str) -> Optional["Message"]:
        """Like _walk without creating: None when a message on the way is absent."""
        node = self
        for segment in segments:
            if not node.values(segment.name):
                return None
            node = node._walk([segment], create=False, path=path)
        return node

    def _position(self, segment: Segment, path: str, create: bool) -> int:
        """Index into self.fields of the entry `segment` names; -1 when absent and `create`."""
        positions = [i for i, (name, _) in enumerate(self.fields) if name == segment.name]
        if segment.index is not None:
            if segment.index >= len(positions):
                raise StepError(
                    "{}: {} has {} entr{}, so index {} does not exist".format(
                        path, segment.name, len(positions), "y" if len(positions) == 1 else "ies",
                        segment.index,
                    )
                )
            return positions[segment.index]
        if segment.key is not None:
            keys = [entry_key(self.fields[i][1]) if isinstance(self.fields[i][1], Message) else None
                    for i in positions]
            if segment.key not in keys:
                raise StepError(
                    "{}: {} has no entry with key {}; keys present: {}".format(
                        path, segment.name, _quote(segment.key),
                        ", ".join(_quote(k) for k in keys if k is not None) or "none",
                    )
                )
            return positions[keys.index(segment.key)]
        if len(positions) == 1:
            return positions[0]
        if not positions:
            if create:
                return -1
            raise StepError(f"{path}: field {segment.name} is not set")
        raise StepError(
            f"{path}: {segment.name} is repeated ({len(positions)} entries here); say which one with [index]"
        )


# ---------------------------------------------------------------- parsing

class _Token(NamedTuple):
    kind: str  # "ident", "number", "string", "punct", "end"
    text: str
    line: int
    col: int


_TOKEN = re.compile(
    r"""(?P<space>[ \t\r\n\f\v]+|\#[^\n]*)
      | (?P<number>-?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[fF]?)(?![A-Za-z0-9_.]))
      | (?P<ident>-?[A-Za-z_][A-Za-z0-9_]*)
      | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
      | (?P<punct>[{}<>\[\]:;,])""",
    re.VERBOSE,
)

_BOOLS = {"true": True, "True": True, "t": True, "false": False, "False": False, "f": False}
_SPECIAL_FLOATS = {"inf": math.inf, "infinity": math.inf, "nan": math.nan}


def _tokens(text: str, source: str) -> Iterator[_Token]:
    line, line_start, pos = 1, 0, 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        col = pos - line_start + 1
        if not match:
            raise StepError(f"{source}:{line}:{col}: {_bad_token(text, pos)}")
        kind = match.lastgroup or ""
        if kind != "space":
            yield _Token(kind, match.group(), line, col)
        newlines = match.group().count("\n")
        if newlines:
            line += newlines
            line_start = match.start() + match.group().rindex("\n") + 1
        pos = match.end()
    yield _Token("end", "", line, pos - line_start + 1)


def _bad_token(text: str, pos: int) -> str:
    if text[pos] in "\"'":
        return "string is not closed on this line"
    word = re.match(r"[-+.\w]+", text[pos:])
    if word and (text[pos].isdigit() or text[pos] in "-+."):
        return f"malformed number {word.group()!r}"
    return f"unexpected character {text[pos]!r}"


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.tokens = list(_tokens(text, source))
        self.pos = 0

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def next(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def error(self, token: _Token, expected: str) -> StepError:
        found = "end of file" if token.kind == "end" else repr(token.text)
        return StepError(f"{self.source}:{token.line}:{token.col}: expected {expected}, found {found}")

    def accept(self, text: str) -> bool:
        token = self.peek()
        if token.kind == "punct" and token.text == text:
            self.pos += 1
            return True
        return False

    def message(self, close: Optional[str]) -> "Message":
        msg = Message()
        while True:
            token = self.peek()
            if close is None and token.kind == "end":
                return msg
            if close is not None and token.kind == "punct" and token.text == close:
                self.pos += 1
                return msg
            if token.kind != "ident" or token.text.startswith("-"):
                expected = "a field name" + ("" if close is None else f" or {close!r}")
                raise self.error(token, expected)
            self.pos += 1
            self.field(token.text, msg)
            if not self.accept(";"):
                self.accept(",")

    def field(self, name: str, msg: "Message") -> None:
        colon = self.accept(":")
        token = self.peek()
        if self.accept("["):
            if not self.accept("]"):
                while True:
                    msg.fields.append((name, self.value(scalar_only=False)))
                    if self.accept("]"):
                        break
                    if not self.accept(","):
                        raise self.error(self.peek(), f"',' or ']' in the list of {name}")
            return
        if token.kind == "punct" and token.text in "{<":
            msg.fields.append((name, self.value(scalar_only=False)))
            return
        if not colon:
            raise self.error(token, f"':' or '{{' after field name {name}")
        msg.fields.append((name, self.value(scalar_only=True)))

    def value(self, scalar_only: bool) -> Value:
        token = self.next()
        if token.kind == "punct" and token.text in "{<" and not scalar_only:
            return self.message("}" if token.text == "{" else ">")
        if token.kind == "string":
            parts = [_unescape(token, self.source)]
            while self.peek().kind == "string":  # adjacent literals concatenate, as in C
                parts.append(_unescape(self.next(), self.source))
            return "".join(parts)
        if token.kind == "number":
            return _number(token.text)
        if token.kind == "ident":
            negative = token.text.startswith("-")
            word = token.text.lstrip("-")
            if word.lower() in _SPECIAL_FLOATS:
                number = _SPECIAL_FLOATS[word.lower()]
                return -number if negative else number
            if not negative:
                return _BOOLS[word] if word in _BOOLS else Enum(word)
        raise self.error(token, "a value (number, string, true/false, enum name{})".format(
            "" if scalar_only else ", '{' or '['"))


def _number(text: str) -> Union[int, float]:
    body = text.lstrip("-")
    sign = -1 if text.startswith("-") else 1
    if body[:2] in ("0x", "0X"):
        return sign * int(body, 16)
    if body[-1:] in ("f", "F"):
        return float(text[:-1])
    if any(char in body for char in ".eE"):
        return float(text)
    return int(text)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
            "\\": "\\", "'": "'", '"': '"', "?": "?"}


def _unescape(token: _Token, source: str) -> str:
    """Decode a quoted literal; escapes produce bytes, so \\ooo / \\xhh spell UTF-8 (as protobuf)."""
    body, out, i = token.text[1:-1], bytearray(), 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            out += char.encode("utf-8")
            i += 1
            continue
        esc = body[i + 1]
        octal = re.match(r"[0-7]{1,3}", body[i + 1:])
        hexa = re.match(r"[xX]([0-9a-fA-F]{1,2})", body[i + 1:])
        if octal:
            out.append(int(octal.group(), 8) & 0xFF)
            i += 1 + len(octal.group())
        elif hexa:
            out.append(int(hexa.group(1), 16))
            i += 1 + len(hexa.group())
        elif esc in _ESCAPES:
            out += _ESCAPES[esc].encode("utf-8")
            i += 2
        else:
            raise StepError(f"{source}:{token.line}:{token.col + 1 + i}: unknown escape \\{esc} in string")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise StepError(f"{source}:{token.line}:{token.col}: string is not valid UTF-8") from None


def parse(text: str, source: str = "<spec>") -> Message:
    """Parse protobuf text into a Message; StepError `source:line:col: expected ..., found ...`."""
    return _Parser(text, source).message(close=None)


# ---------------------------------------------------------------- writing

def _quote(text: str) -> str:
    out = []
    for char in text:
        if char in "\\\"":
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\{ord(char):03o}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _literal(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return value.ident
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        # repr is the shortest text that reads back as the same double, hence the same float32.
        return repr(value)
    if isinstance(value, str):
        return _quote(value)
    raise TypeError(f"not a protobuf text value: {value!r}")


def format(msg: Message, indent: int = 0) -> str:
    """Canonical protobuf text: one field a line, two-space indent, `name { ... }` for messages."""
    pad = "  " * indent
    lines = []
    for name, value in msg.fields:
        if isinstance(value, Message):
            lines.append(f"{pad}{name} {{\n{format(value, indent + 1)}{pad}}}\n")
        else:
            lines.append(f"{pad}{name}: {_literal(value)}\n")
    return "".join(lines)
