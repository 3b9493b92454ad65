"""The status.json follower: records arrive while the file grows, broken lines are skipped, rewrites restart."""

import json
import logging
import threading
import time
from pathlib import Path

from tao_aml.steps.tao.status_follow import StatusFollower, read_records


def line(**record) -> str:
    return json.dumps(record) + "\n"


def wait_for(condition, timeout: float = 5.0) -> None:
    end = time.time() + timeout
    while not condition():
        assert time.time() < end, "timed out"
        time.sleep(0.01)


def test_records_arrive_while_the_file_grows_and_half_lines_wait(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    seen: list[dict] = []
    follower = StatusFollower(str(path), seen.append, interval=0.01)
    follower.start()
    with open(path, "a") as handle:
        handle.write(line(status="STARTED"))
        handle.flush()
        wait_for(lambda: len(seen) == 1)
        first, second = line(status="RUNNING", epoch=0).split('"epoch"')
        handle.write(first)  # TAO in the middle of writing a line
        handle.flush()
        time.sleep(0.1)
        assert len(seen) == 1
        handle.write('"epoch"' + second)
        handle.flush()
        wait_for(lambda: len(seen) == 2)
    follower.stop()
    assert seen == [{"status": "STARTED"}, {"status": "RUNNING", "epoch": 0}]
    assert follower.skipped == 0


def test_malformed_and_truncated_lines_are_skipped_with_a_warning(tmp_path: Path, caplog) -> None:
    path = tmp_path / "status.json"
    path.write_text(line(status="STARTED") + "{not json\n" + "[1, 2]\n" + line(status="SUCCESS") + '{"status": "RUNN')
    with caplog.at_level(logging.WARNING):
        records = read_records(str(path))
    assert records == [{"status": "STARTED"}, {"status": "SUCCESS"}]
    warnings = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert len(warnings) == 3 and '{"status": "RUNN' in warnings[-1]


def test_a_rewritten_file_is_read_again_from_its_start(tmp_path: Path, caplog) -> None:
    path = tmp_path / "status.json"
    seen: list[dict] = []
    follower = StatusFollower(str(path), seen.append, from_start=True)
    path.write_text(line(status="STARTED", message="first run") + line(status="RUNNING", message="x" * 50))
    follower.poll()
    # TAO opens status.json with "w" again: shorter than before, then longer with other content.
    path.write_text(line(status="STARTED", message="second"))
    with caplog.at_level(logging.WARNING):
        follower.poll()
        with open(path, "a") as handle:
            handle.write(line(status="SUCCESS", message="y" * 200))
        follower.poll()
        path.write_text(line(status="STARTED", message="third run!") + line(status="SUCCESS", message="z" * 300))
        follower.poll()
    assert [r["message"][:10] for r in seen] == ["first run", "x" * 10, "second", "y" * 10, "third run!", "z" * 10]
    assert sum("started over" in r.getMessage() for r in caplog.records) == 2


def test_lines_of_an_earlier_attempt_are_not_reported_again(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    path.write_text(line(status="RUNNING", epoch=0) + line(status="RUNNING", epoch=1))
    seen: list[dict] = []
    follower = StatusFollower(str(path), seen.append)
    with open(path, "a") as handle:
        handle.write(line(status="RUNNING", epoch=2))
    follower.poll(final=True)
    assert seen == [{"status": "RUNNING", "epoch": 2}]


def test_a_failing_consumer_never_stops_the_follower(tmp_path: Path, caplog) -> None:
    path = tmp_path / "status.json"
    path.write_text(line(n=1) + line(n=2))
    seen: list[int] = []

    def consume(record: dict) -> None:
        if record["n"] == 1:
            raise RuntimeError("store down")
        seen.append(record["n"])

    with caplog.at_level(logging.WARNING):
        StatusFollower(str(path), consume, from_start=True).poll(final=True)
    assert seen == [2] and any("could not report" in r.getMessage() for r in caplog.records)


def test_stop_reads_the_last_lines_written_just_before_exit(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    seen: list[dict] = []
    follower = StatusFollower(str(path), seen.append, interval=30)  # the thread never polls by itself
    follower.start()
    writer = threading.Thread(target=lambda: path.write_text(line(status="SUCCESS")))
    writer.start()
    writer.join()
    follower.stop()
    assert seen == [{"status": "SUCCESS"}]
