"""JSON log lines: one object per record, access fields as fields, exceptions by type only."""

from __future__ import annotations

import json
import logging
import logging.config
import sys

from app.process.logging_setup import JsonLines, logging_config


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


def test_the_server_configuration_writes_json_lines_to_stderr() -> None:
    configured = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.access", "carelevel")]
    before = [(logger.handlers[:], logger.level, logger.propagate) for logger in configured]
    logging.config.dictConfig(logging_config("INFO", json_lines=True))
    try:
        (handler,) = logging.getLogger("carelevel").handlers
        assert type(handler) is logging.StreamHandler
        assert handler.stream is sys.stderr
        assert isinstance(handler.formatter, JsonLines)
    finally:
        for logger, (handlers, level, propagate) in zip(configured, before, strict=True):
            logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate
