"""JSON log lines: one object per record, access fields as fields, exceptions by type only;
the access lines of one event-loop turn written together, none held past their block."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import sys
import threading
from collections.abc import Iterator

import pytest

from app.process.logging_setup import JsonLines, LineGroups, logging_config, written_together


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("carelevel.access", logging.INFO, __file__, 1, message, args, None)
    for name, value in extra.items():
        setattr(made, name, value)
    return made


def test_an_access_record_is_one_json_object_with_its_fields() -> None:
    fields = {
        "method": "POST",
        "route": "/v1/screenings",
        "status": 201,
        "duration_ms": 12.5,
        "request_id": "lb-7f3a.1",
        "client_id": "3f0c2a",
        "tenant": "clinic-a",
    }
    line = JsonLines().format(record("method=%s ...", "POST", access=fields))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry == {
        "time": entry["time"],
        "level": "INFO",
        "logger": "carelevel.access",
        "message": "request",
        **fields,
    }
    assert entry["time"].endswith("+00:00")


def test_other_records_keep_their_message_and_exceptions_only_their_type() -> None:
    assert json.loads(JsonLines().format(record("started %d workers", 2)))["message"] == (
        "started 2 workers"
    )
    try:
        raise ValueError("PHQ-9 item 9 = 3")
    except ValueError:
        failed = record("unexpected error")
        failed.exc_info = sys.exc_info()
    entry = json.loads(JsonLines().format(failed))
    assert entry["exception"] == "ValueError"
    assert "PHQ-9" not in json.dumps(entry)


class CountedWrites(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.fixture
def access() -> Iterator[tuple[logging.Logger, CountedWrites]]:
    """A logger under a parent whose LineGroups handler writes to a counted stream."""
    parent, child = logging.getLogger("grouping-test"), logging.getLogger("grouping-test.access")
    stream = CountedWrites()
    handler = LineGroups(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    parent.addHandler(handler)
    parent.setLevel(logging.INFO)
    yield child, stream
    parent.removeHandler(handler)


def test_outside_a_block_each_line_is_written_at_once(
    access: tuple[logging.Logger, CountedWrites],
) -> None:
    logger, stream = access
    logger.info("first")
    assert stream.getvalue() == "first\n"
    logger.info("second")
    assert (stream.getvalue(), stream.writes) == ("first\nsecond\n", 2)


def test_the_lines_of_a_block_are_written_together_at_its_end(
    access: tuple[logging.Logger, CountedWrites],
) -> None:
    logger, stream = access
    with written_together(logger):
        for number in range(5):
            logger.info("request %d", number)
        assert stream.getvalue() == "", "held until the block ends"
    assert stream.getvalue() == "".join(f"request {n}\n" for n in range(5))
    assert stream.writes == 1
    logger.info("after")
    assert (stream.getvalue().splitlines()[-1], stream.writes) == ("after", 2)


def test_a_block_that_fails_still_writes_its_lines_and_nested_blocks_write_once(
    access: tuple[logging.Logger, CountedWrites],
) -> None:
    logger, stream = access

    def failing_block() -> None:
        with written_together(logger):
            with written_together(logger):
                logger.info("inner")
            assert stream.getvalue() == "", "the outer block still holds"
            logger.info("outer")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        failing_block()
    assert (stream.getvalue(), stream.writes) == ("inner\nouter\n", 1)


def test_a_line_from_another_thread_during_a_block_is_written_with_it(
    access: tuple[logging.Logger, CountedWrites],
) -> None:
    logger, stream = access
    with written_together(logger):
        logger.info("in the block")
        elsewhere = threading.Thread(target=logger.info, args=("from a thread",))
        elsewhere.start()
        elsewhere.join()
    assert stream.getvalue().splitlines() == ["in the block", "from a thread"]


def test_a_logger_that_does_not_propagate_holds_nothing_of_its_parents(
    access: tuple[logging.Logger, CountedWrites],
) -> None:
    logger, stream = access
    alone = logging.getLogger("grouping-test.alone")
    alone.propagate = False
    try:
        with written_together(alone):
            logger.info("not held")
            assert stream.getvalue() == "not held\n"
    finally:
        alone.propagate = True


def test_the_server_configuration_writes_json_lines_to_stderr_grouping_lines() -> None:
    configured = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.access", "carelevel")]
    before = [(logger.handlers[:], logger.level, logger.propagate) for logger in configured]
    logging.config.dictConfig(logging_config("INFO", json_lines=True))
    try:
        (handler,) = logging.getLogger("carelevel").handlers
        assert isinstance(handler, LineGroups)
        assert handler.stream is sys.stderr
        assert isinstance(handler.formatter, JsonLines)
    finally:
        for logger, (handlers, level, propagate) in zip(configured, before, strict=True):
            logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate
