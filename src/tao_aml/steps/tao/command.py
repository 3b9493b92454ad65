"""Run a TAO 5.0 task the way its launcher expects, and report its failure clearly.

TAO's entrypoint re-joins the task's arguments into one `bash -c` string without quoting, finds the
task in argv[1] only, and accepts abbreviated long flags (facts/tao5.md). So every command here puts
the task first, spells flags in full, and refuses values that the shell would re-split or expand.
"""

import collections
import json
import logging
import os
import re
import subprocess
import sys
from typing import Deque, Dict, List, Optional, Sequence, Tuple, Union

from tao_aml.steps.common import StepError
from tao_aml.steps.tao.observe import TaskObserver

LOG = logging.getLogger("tao_aml.tao")

# Anything the launcher's `bash -c` would split, quote, expand or redirect.
_UNSAFE = re.compile(r"[\s'\"$;&|<>()\[\]{}*?`\\!#~]")
TAIL_LINES = 40
MASKED_MIN_LENGTH = 6

FlagValue = Union[str, int, float, bool, None]


class TaoFailed(StepError):
    """TAO ran and reported failure; the message carries its FAILURE status and the log's tail."""


def check_safe(flag: str, value: str) -> None:
    """Refuse a value TAO's launcher would mangle, naming the flag and the offending character."""
    match = _UNSAFE.search(value)
    if match:
        raise StepError(
            "{} value {!r} contains {!r}, which TAO 5.0's launcher passes through an unquoted "
            "bash -c string; use a path or key without spaces or shell characters".format(
                flag, _redacted(flag, value), match.group(0)
            )
        )


def _redacted(flag: str, value: str) -> str:
    return "***" if is_secret_flag(flag) else value


def is_secret_flag(arg: str) -> bool:
    """`--key` or `-k`, or an abbreviation of `--key` that TAO's argparse would accept (`--ke`)."""
    return arg == "-k" or (arg.startswith("--") and len(arg) > 2 and "--key".startswith(arg))


def build_command(
    executable: str,
    task: str,
    flags: Sequence[Tuple[str, FlagValue]],
    global_flags: Sequence[Tuple[str, FlagValue]] = (),
) -> List[str]:
    """`executable task --flag value ...`; True means a bare switch, None and False leave the flag out."""
    argv = [executable, task]
    for flag, value in list(flags) + list(global_flags):
        if not flag.startswith("--"):
            raise ValueError("flags are spelled in full: {}".format(flag))
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
            continue
        text = str(value)
        check_safe(flag, text)
        argv.extend([flag, text])
    return argv


def secret_values(argv: Sequence[str]) -> List[str]:
    """The values of the key flags in argv (every form printable masks), longest first."""
    found = []
    for index, arg in enumerate(argv):
        flag, equals, value = arg.partition("=")
        if equals and is_secret_flag(flag):
            found.append(value)
        elif arg.startswith("-k") and not arg.startswith("--") and len(arg) > 2:
            found.append(arg[2:])
        elif is_secret_flag(arg) and index + 1 < len(argv):
            found.append(argv[index + 1])
    # A value this short would mask ordinary words of TAO's output; the command line itself masks it by position.
    return sorted({value for value in found if len(value) >= MASKED_MIN_LENGTH}, key=len, reverse=True)


def masked(text: str, secrets: Sequence[str]) -> str:
    """text with every secret value replaced by ***."""
    for value in secrets:
        text = text.replace(value, "***")
    return text


def printable(argv: Sequence[str]) -> str:
    """The command line for logs, with the key masked in every form: `--key K`, `--key=K`, `-k K`,
    `-k=K`, `-kK` and abbreviations such as `--ke K`."""
    shown = []
    hide_next = False
    for arg in argv:
        flag, equals, _ = arg.partition("=")
        if hide_next:
            shown.append("***")
            hide_next = False
        elif equals and is_secret_flag(flag):
            shown.append(flag + "=***")
        elif arg.startswith("-k") and not arg.startswith("--") and len(arg) > 2:
            shown.append("-k***")
        else:
            shown.append(arg)
            hide_next = is_secret_flag(arg)
    return " ".join(shown)


def final_status(results_dir: str) -> Optional[Dict[str, object]]:
    """The last record TAO wrote to <results_dir>/status.json; malformed lines are passed over."""
    path = os.path.join(results_dir, "status.json")
    if not os.path.isfile(path):
        return None
    last = None
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "status" in record:
                last = record
    return last


def run(
    argv: Sequence[str],
    results_dir: str,
    env: Optional[Dict[str, str]] = None,
) -> None:
    """Run TAO, streaming its output, and raise TaoFailed with its last words when it fails."""
    LOG.info("running: %s", printable(argv))
    hidden = secret_values(argv)
    full_env = dict(os.environ)
    full_env.setdefault("TELEMETRY_OPT_OUT", "yes")
    if env:
        full_env.update(env)
    tail: Deque[str] = collections.deque(maxlen=TAIL_LINES)
    # Reports status.json and output as metrics while TAO runs (observe.py).
    observer = TaskObserver(argv, results_dir)
    observer.start()
    try:
        try:
            proc = subprocess.Popen(
                list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=full_env,
                universal_newlines=True, errors="replace", bufsize=1,
            )
        except FileNotFoundError:
            raise StepError(
                "{} is not on PATH: this step must run in the TAO 5.0 environment".format(argv[0])
            ) from None
        assert proc.stdout is not None
        for raw in proc.stdout:
            # TAO may echo its own command line (an argparse error, a debug log): never the key.
            line = masked(raw, hidden)
            sys.stdout.write(line)
            tail.append(line.rstrip("\n"))
            observer.output(line)
        code = proc.wait()
    finally:
        observer.stop()
    sys.stdout.flush()
    status = final_status(results_dir)
    # TAO catches its own spec errors' SystemExit, writes FAILURE and still exits 0.
    failed_status = status is not None and status.get("status") == "FAILURE"
    observer.finish(succeeded=code == 0 and not failed_status)
    if code != 0 or failed_status:
        raise TaoFailed(
            "{} {} failed (exit code {}){}\n--- last {} lines of TAO's output ---\n{}".format(
                os.path.basename(argv[0]), argv[1], code,
                ": " + str(status.get("message", "")) if failed_status and status else "",
                len(tail), "\n".join(tail),
            )
        )
