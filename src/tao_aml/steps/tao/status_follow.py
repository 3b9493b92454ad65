"""Follow TAO's <results>/status.json while TAO writes it, handing on each record as it appears.

TAO appends one JSON object a line (facts/tao5.md, "Progress reporting"); some tasks open the file
with "w" and so start it over. A line still being written is held until its newline arrives; a
line that does not parse is skipped with a warning. Nothing here may stop the TAO task it watches.
"""

import json
import logging
import os
import threading
from typing import Callable, Dict, List, Optional

LOG = logging.getLogger("tao_aml.status")

Record = Dict[str, object]
POLL_SECONDS = 1.0
HEAD_BYTES = 65536  # a first line longer than this is never compared, only read


class StatusFollower:
    """Reads new complete lines of a status file, on a thread or by explicit `poll()` calls."""

    def __init__(
        self, path: str, on_record: Callable[[Record], None], interval: float = POLL_SECONDS,
        from_start: bool = False,
    ) -> None:
        self.path = path
        self.on_record = on_record
        self.interval = interval
        self.skipped = 0
        self._offset = 0
        self._head: Optional[bytes] = None
        self._pending = b""
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        if not from_start and os.path.isfile(path):
            # Lines of an earlier attempt (a resumed training) were reported by that attempt.
            self._offset = os.path.getsize(path)
            self._head = self._first_line()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="status-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Read what is left, including a last line without its newline, then end the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.poll(final=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def _first_line(self) -> Optional[bytes]:
        try:
            with open(self.path, "rb") as handle:
                head = handle.readline(HEAD_BYTES)
        except OSError:
            return None
        return head if head.endswith(b"\n") else None

    def _rewritten(self, size: int) -> bool:
        """TAO opened the file anew: it is shorter than what was read, or begins differently."""
        if size < self._offset:
            return True
        head = self._first_line()
        return self._head is not None and head is not None and head != self._head

    def poll(self, final: bool = False) -> None:
        try:
            size = os.path.getsize(self.path)
        except OSError:
            return  # not written yet
        if self._offset and self._rewritten(size):
            LOG.warning("%s was started over; reading it from the beginning", self.path)
            self._offset, self._pending, self._head = 0, b"", None
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except OSError as err:
            LOG.warning("cannot read %s: %s", self.path, err)
            return
        self._offset += len(data)
        if self._head is None:
            self._head = self._first_line()
        lines = (self._pending + data).split(b"\n")
        self._pending = lines.pop()
        if final and self._pending.strip():
            lines.append(self._pending)
            self._pending = b""
        for line in lines:
            self._handle(line)

    def _handle(self, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace").strip()
        if not text:
            return
        try:
            record = json.loads(text)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            self.skipped += 1
            LOG.warning("skipping a malformed line of %s: %.200s", self.path, text)
            return
        try:
            self.on_record(record)
        except Exception:  # a metrics problem must never end the training it reports on
            LOG.warning("could not report a status record", exc_info=True)


def read_records(path: str) -> List[Record]:
    """Every well-formed record of a finished status file (malformed lines skipped with a warning)."""
    records: List[Record] = []
    follower = StatusFollower(path, records.append, from_start=True)
    follower.poll(final=True)
    return records
