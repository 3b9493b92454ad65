"""WIDER FACE annotation files (`wider_face_<split>_bbx_gt.txt`), read and checked field by field.

The format, as the WIDER FACE readme defines it: for each image a line with its path relative to
`WIDER_<split>/images`, a line with its number of faces, then one line per face with ten numbers
`x1 y1 w h blur expression illumination invalid occlusion pose`. An image with 0 faces is followed by
one line of ten zeros (tolerated when missing). The attributes take the readme's values only
(blur 0-2, expression 0-1, illumination 0-1, invalid 0-1, occlusion 0-2, pose 0-1); a width or height
below 0 is refused (0 occurs in the real files: the converter drops such faces as too small). Every
problem names the file and the line.
"""

import codecs
import math
import re
from typing import List, NamedTuple, Sequence, Tuple

from tao_aml.steps.common import StepError

FACE_FIELDS = ("x1", "y1", "w", "h", "blur", "expression", "illumination", "invalid", "occlusion", "pose")
ATTRIBUTE_VALUES = {
    "blur": (0, 1, 2), "expression": (0, 1), "illumination": (0, 1), "invalid": (0, 1), "occlusion": (0, 1, 2),
    "pose": (0, 1),
}
COUNT = re.compile(r"[0-9]+")


class Face(NamedTuple):
    x1: float
    y1: float
    width: float
    height: float
    invalid: bool


class Record(NamedTuple):
    """One image of the annotation file."""

    rel_path: str  # relative to the images folder, with `/`
    line: int  # line of the image path in the annotation file
    faces: Tuple[Face, ...]


def _is_number_line(tokens: Sequence[str]) -> bool:
    for token in tokens:
        try:
            float(token)
        except ValueError:
            return False
    return True


def _face_values(path: str, line_no: int, text: str) -> List[float]:
    tokens = text.split()
    if len(tokens) != len(FACE_FIELDS):
        raise StepError(
            "{}:{}: expected {} numbers ({}), got {} field(s): {!r}".format(
                path, line_no, len(FACE_FIELDS), " ".join(FACE_FIELDS), len(tokens), text.strip()
            )
        )
    values = []
    for field, token in zip(FACE_FIELDS, tokens):
        try:
            value = float(token)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise StepError(f"{path}:{line_no}: field {field} is not a number: {token!r}")
        allowed = ATTRIBUTE_VALUES.get(field)
        if allowed is not None and value not in allowed:
            raise StepError(f"{path}:{line_no}: field {field} is {token}; WIDER FACE defines "
                            f"{', '.join(str(v) for v in allowed)} only")
        if field in ("w", "h") and value < 0:
            raise StepError(f"{path}:{line_no}: field {field} is negative ({token}): a face's width and "
                            "height are 0 or more")
        values.append(value)
    return values


def _parse_face(path: str, line_no: int, text: str) -> Face:
    values = _face_values(path, line_no, text)
    return Face(values[0], values[1], values[2], values[3], values[7] != 0)


def _read_lines(path: str) -> List[str]:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise StepError(f"annotation file {path} does not exist") from None
    except OSError as err:
        raise StepError(f"cannot read annotation file {path}: {err}") from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise StepError(f"{path}:{line}: not UTF-8 text (byte {data[err.start:err.start + 1]!r} at column "
                        f"{column}); WIDER FACE annotation files are plain text") from None


def parse_annotations(path: str) -> List[Record]:
    """Read a wider_face_*_bbx_gt.txt; a malformed file fails naming the file and line."""
    lines = _read_lines(path)
    # Numbered non-blank lines; blank lines (the file's trailing newline) carry no meaning.
    numbered = [(index + 1, text) for index, text in enumerate(lines) if text.strip()]
    records: List[Record] = []
    position = 0
    while position < len(numbered):
        path_line, rel_path = numbered[position]
        rel_path = rel_path.strip()
        if _is_number_line(rel_path.split()):
            previous = f" for {records[-1].rel_path} on line {records[-1].line}" if records else ""
            raise StepError(
                f"{path}:{path_line}: expected an image path, got numbers {rel_path!r} "
                f"(more face lines than the count announced{previous}?)"
            )
        parts = rel_path.split("/")
        if rel_path.startswith("/") or ".." in parts or "" in parts:
            raise StepError(
                f"{path}:{path_line}: image path {rel_path!r} must be relative to the images folder"
            )
        if position + 1 >= len(numbered):
            raise StepError(
                f"{path}:{path_line}: file ends after image path {rel_path!r}; "
                "its face count is missing (truncated file?)"
            )
        count_line, count_text = numbered[position + 1]
        if not COUNT.fullmatch(count_text.strip()):
            raise StepError(
                f"{path}:{count_line}: expected the number of faces of {rel_path} (a whole number, 0 or more), "
                f"got {count_text.strip()!r}"
            )
        count = int(count_text)
        position += 2
        if count == 0:
            # WIDER follows a zero count with one line of ten zeros; tolerate its absence.
            if position < len(numbered) and _is_number_line(numbered[position][1].split()):
                zeros_line, zeros_text = numbered[position]
                if any(_face_values(path, zeros_line, zeros_text)):
                    raise StepError(
                        f"{path}:{zeros_line}: {rel_path} has 0 faces (line {count_line}) but is "
                        f"followed by a box {zeros_text.strip()!r}; expected ten zeros"
                    )
                position += 1
            records.append(Record(rel_path, path_line, ()))
            continue
        faces = []
        for index in range(count):
            if position >= len(numbered):
                raise StepError(
                    f"{path}:{numbered[-1][0]}: file ends after {index} of the {count} faces of "
                    f"{rel_path} (count on line {count_line}); truncated file?"
                )
            face_line, face_text = numbered[position]
            faces.append(_parse_face(path, face_line, face_text))
            position += 1
        records.append(Record(rel_path, path_line, tuple(faces)))
    if not records:
        raise StepError(f"annotation file {path} lists no images")
    return records
