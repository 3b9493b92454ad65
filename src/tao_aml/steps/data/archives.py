"""Check and extract zip and tar archives: nothing lands outside the folder, overwrites, or explodes.

Every member is checked before anything is written. Its path must stay inside the folder (no absolute
path, drive letter or '..'), hold no control character, and not be one of the step's own records; only
plain files and folders are extracted (links, devices and sparse files are refused). No two members may
land on the same path (a name given twice, 'a/./b' beside 'a/b', a file that another member needs as a
folder), nor on a protected path: a file that another download verified. The files' sizes, as the
archive states them, may add up to at most `max_bytes`, and to at most `max_ratio` times the archive's
own size (a zip bomb is refused before it is inflated); a tar's members are counted as they are read,
so a compressed tar is read no further than the limits allow. zipfile and tarfile never write more
of a member than its stated size, and zipfile checks each member's CRC as it is written.
"""

import hashlib
import lzma
import os
import posixpath
import re
import shutil
import tarfile
import zipfile
import zlib
from typing import IO, Callable, Dict, List, Mapping, Optional, Set, Tuple

from tao_aml.steps.common import StepError

CHUNK = 1024 * 1024
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
# What a damaged, cut-off or mislabelled archive raises while it is read.
ARCHIVE_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, EOFError, OSError, zlib.error,
                  lzma.LZMAError, NotImplementedError)
# Each extracted file: (size in bytes, sha256), by its path relative to the folder ('/'-separated).
Files = Dict[str, Tuple[int, str]]


def kind(name: str) -> Optional[str]:
    """'zip' or 'tar' for a file named as such an archive, else None."""
    lowered = name.lower()
    if lowered.endswith(".zip"):
        return "zip"
    if lowered.endswith(TAR_SUFFIXES):
        return "tar"
    return None


class Limits:
    """How much an archive may extract: in total, and as a multiple of its own size."""

    def __init__(self, max_bytes: int, max_ratio: float) -> None:
        self.max_bytes = max_bytes
        self.max_ratio = max_ratio


class _Plan:
    """The members of one archive, checked one by one as they are listed and then as a whole."""

    def __init__(self, label: str, archive_size: int, limits: Limits, reserved: Callable[[str], bool],
                 protected: Mapping[str, str]) -> None:
        self.label = label
        self.archive_size = archive_size
        self.limits = limits
        self.reserved = reserved
        self.protected = protected
        self.files: Dict[str, str] = {}  # path -> member name
        self.dirs: Set[str] = set()
        self.total = 0

    def refuse(self, name: str, why: str) -> StepError:
        return StepError(f"{self.label}: refusing member {name!r}: {why}")

    def add(self, name: str, is_dir: bool, size: int) -> Optional[str]:
        """The member's path in the folder (None for the folder itself), or a StepError."""
        clean = name.replace("\\", "/")
        if any(not ch.isprintable() for ch in clean):
            raise self.refuse(name, "its name holds a control character")
        if clean.startswith("/") or re.match(r"^[A-Za-z]:", clean) or ".." in clean.split("/"):
            raise self.refuse(name, "its path leaves the output folder")
        path = posixpath.normpath(clean)
        if path == ".":
            return None
        if self.reserved(path.split("/")[0]):
            raise self.refuse(name, "the step keeps its own records under that name")
        if is_dir:
            self.dirs.add(path)
            return path
        if path in self.files:
            raise self.refuse(name, f"member {self.files[path]!r} is extracted to the same path {path}: members "
                                    "may not overwrite each other")
        if path in self.protected:
            raise self.refuse(name, f"it would replace {path}, {self.protected[path]}")
        self.files[path] = name
        self.total += size
        if self.total > self.limits.max_bytes:
            raise StepError(f"{self.label}: refusing to extract: its files add up to more than "
                            f"--max_extracted_bytes {self.limits.max_bytes} ({self.total} bytes so far)")
        if self.archive_size and self.total > self.limits.max_ratio * self.archive_size:
            raise StepError(f"{self.label}: refusing to extract: its files add up to more than --max_ratio "
                            f"{self.limits.max_ratio:g} times its own {self.archive_size} bytes ({self.total} "
                            "bytes so far): a zip bomb, or raise the limit")
        return path

    def finish(self) -> None:
        """A path may not be both a file and a folder among the members."""
        for path, name in self.files.items():
            parent = posixpath.dirname(path)
            while parent:
                if parent in self.files:
                    raise self.refuse(name, f"member {self.files[parent]!r} is a file where it needs the folder "
                                            f"{parent}")
                parent = posixpath.dirname(parent)
            if path in self.dirs:
                raise self.refuse(name, f"the archive also has a folder {path}")


def _write(src: IO[bytes], target: str) -> Tuple[int, str]:
    """Copy a member to `target`; its size and sha256."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with src, open(target, "wb") as out:
        for block in iter(lambda: src.read(CHUNK), b""):
            out.write(block)
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def _zip(path: str, staging: Optional[str], plan: _Plan, written: Files) -> int:
    with zipfile.ZipFile(path) as archive:
        members = [(info, plan.add(info.filename, info.is_dir(), info.file_size)) for info in archive.infolist()]
        plan.finish()
        if staging is None:
            bad = archive.testzip()
            if bad is not None:
                raise zipfile.BadZipFile(f"Bad CRC-32 for file {bad!r}")
            return len(plan.files)
        for info, rel in members:
            if rel is not None and not info.is_dir():
                written[rel] = _write(archive.open(info), os.path.join(staging, *rel.split("/")))
    return len(plan.files)


def _check_tar_end(archive: tarfile.TarFile) -> None:
    """tarfile stops quietly at the end of the data: a tar cut at a member boundary must still end in
    tar's end-of-archive block, and a compressed one must reach its compression trailer."""
    fileobj = archive.fileobj
    assert fileobj is not None  # an archive opened from a path always has one
    fileobj.seek(archive.offset)
    block = fileobj.read(tarfile.BLOCKSIZE)
    if len(block) != tarfile.BLOCKSIZE or block.count(0) != tarfile.BLOCKSIZE:
        raise tarfile.ReadError("the data ends without tar's end-of-archive block")
    while fileobj.read(CHUNK):
        pass


def _tar(path: str, staging: Optional[str], plan: _Plan, written: Files) -> int:
    with tarfile.open(path, "r:*") as archive:
        members: List[Tuple[tarfile.TarInfo, Optional[str]]] = []
        for member in archive:  # read one by one: the limits stop a bomb early
            if not (member.isdir() or member.isfile()) or member.issparse():
                raise plan.refuse(member.name, "only plain files and folders are extracted (links, devices and "
                                               "sparse files are not)")
            members.append((member, plan.add(member.name, member.isdir(), member.size)))
        _check_tar_end(archive)
        plan.finish()
        if staging is None:
            return len(plan.files)
        for member, rel in members:
            if rel is not None and member.isfile():
                src = archive.extractfile(member)
                assert src is not None  # a regular file always has data
                written[rel] = _write(src, os.path.join(staging, *rel.split("/")))
    return len(plan.files)


def unpack(archive_kind: str, path: str, staging: Optional[str], label: str, limits: Limits,
           reserved: Callable[[str], bool], protected: Mapping[str, str]) -> Tuple[int, Files]:
    """Check an archive (read through once), and with `staging` extract it there; (files in it, files written).

    `reserved(top)`: whether a top-level name is the caller's own; `protected`: paths no member may
    replace, each with a few words on whose it is. A damaged archive raises one of ARCHIVE_ERRORS, a
    refused member or a limit a StepError.
    """
    plan = _Plan(label, os.path.getsize(path), limits, reserved, protected)
    written: Files = {}
    count = (_zip if archive_kind == "zip" else _tar)(path, staging, plan, written)
    return count, written


def _moves(staging: str, dest: str, label: str) -> List[Tuple[str, str]]:
    """(source, target) renames that put `staging`'s tree into `dest`: whole folders where `dest` has
    none yet, file by file inside folders it has. A file where a folder is (or the reverse) is refused."""
    moves = []
    for name in sorted(os.listdir(staging)):
        src, target = os.path.join(staging, name), os.path.join(dest, name)
        if os.path.isdir(src) and os.path.isdir(target) and not os.path.islink(target):
            moves += _moves(src, target, label)
        elif os.path.isdir(src) != os.path.isdir(target) and os.path.lexists(target):
            raise StepError(f"{label}: cannot put {name!r} in place: {target} is already there as a "
                            f"{'folder' if os.path.isdir(target) else 'file'}")
        else:
            moves.append((src, target))
    return moves


def place(staging: str, dest: str, label: str) -> None:
    """Move an extracted tree into `dest`; every rename is planned (and checked) before the first."""
    for src, target in _moves(staging, dest, label):
        os.replace(src, target)
    shutil.rmtree(staging, ignore_errors=True)
