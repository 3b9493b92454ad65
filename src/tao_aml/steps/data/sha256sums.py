"""SHA256SUMS: the sha256 of every file a download left, written at the first download, checked on reuse.

The format is `sha256sum`'s (`<64 hex digits>  <path>` per line, paths relative to the folder), so
`sha256sum -c SHA256SUMS` in the folder checks it too. The file travels with the folder: when the folder
becomes a data asset, every run that reuses the asset checks its files against it.
"""

import logging
import os
import re
import time
from typing import Mapping

from tao_aml.steps.common import StepError, atomic_write_text
from tao_aml.steps.data.http_fetch import sha256_of

LOG = logging.getLogger("tao_aml.steps.data.sha256sums")

NAME = "SHA256SUMS"
_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


def write(folder: str, sha256s: Mapping[str, str]) -> None:
    """Write `folder`/SHA256SUMS for {relative path: sha256}."""
    atomic_write_text(os.path.join(folder, NAME), "".join(f"{sha256s[path]}  {path}\n" for path in sorted(sha256s)))


def verify(folder: str, progress_interval: float = 30.0) -> int:
    """Check every file `folder`/SHA256SUMS lists; the number checked. A missing, changed or unsafe entry is
    a StepError naming the file and the line."""
    sums = os.path.join(folder, NAME)
    try:
        with open(sums, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except UnicodeDecodeError:
        raise StepError(f"{sums} is not UTF-8 text: it is not a list of sha256 sums") from None
    started = last = time.monotonic()
    for number, line in enumerate(lines, 1):
        match = _LINE.match(line)
        where = f"{sums} line {number}"
        if not match:
            raise StepError(f"{where} is not '<sha256>  <path>': {line[:120]!r}")
        expected, path = match.groups()
        if path.startswith("/") or ".." in path.split("/"):
            raise StepError(f"{where} names a path outside the folder: {path!r}")
        local = os.path.join(folder, *path.split("/"))
        if not os.path.isfile(local):
            raise StepError(f"{local} is missing: {where} lists it (the data changed since it was downloaded)")
        got = sha256_of(local).hexdigest()
        if got != expected:
            raise StepError(f"{local}: sha256 {got}, but {expected} when it was downloaded ({where}): the data "
                            "changed since; download it again")
        if time.monotonic() - last >= progress_interval:
            last = time.monotonic()
            LOG.info("checked %d of %d files against %s", number, len(lines), sums)
    LOG.info("checked %d files against %s in %.1f s: all as downloaded", len(lines), sums, time.monotonic() - started)
    return len(lines)
