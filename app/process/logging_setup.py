"""Logging without health information.

``carelevel serve`` logs one access line per request from the application (see
``app/runtime/edge.py``), with uvicorn's own access log off, since it prints paths with their query
strings. Whatever else configures logging (a host application, a debugger, ``DEBUG`` levels),
the filters installed here keep submitted and stored values out of every record: tracebacks
are reduced to the exception's type, and the database drivers' records of parameters and rows
are dropped (the engine also hides parameters from its own messages).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson


class TypeOnlyTracebacks(logging.Filter):
    """An unexpected exception is logged by its type only: a traceback's messages can carry
    submitted or stored answer values."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[0] is not None:
            record.msg = f"{record.getMessage()} ({record.exc_info[0].__name__})"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


class NoDriverDetail(logging.Filter):
    """Drops database records below WARNING: SQLAlchemy's row dumps (DEBUG) and the drivers'
    statement records with their parameters. Warnings and errors stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


_FILTERS: tuple[tuple[str, type[logging.Filter]], ...] = (
    ("uvicorn.error", TypeOnlyTracebacks),
    ("carelevel", TypeOnlyTracebacks),
    # A filter applies to the records of its own logger only, not to its children's: these
    # are the loggers that emit the records (SQLAlchemy logs every engine under its class).
    ("sqlalchemy.engine.Engine", NoDriverDetail),
    ("aiosqlite", NoDriverDetail),
)


def keep_health_information_out_of_logs() -> None:
    """Install the filters (once per process, however many applications are created)."""
    for name, kind in _FILTERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, kind) for existing in logger.filters):
            logger.addFilter(kind())


class JsonLines(logging.Formatter):
    """One JSON object per record: ``time``, ``level``, ``logger``, ``message``; an access
    record's fields (request id, method, route template, status, duration, client, tenant) are
    fields of the object, for log pipelines to index."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            entry["message"] = "request"
            entry.update(access)
        else:
            entry["message"] = record.getMessage()
        if record.exc_info and record.exc_info[0] is not None:  # the filters normally took it
            entry["exception"] = record.exc_info[0].__name__
        return orjson.dumps(entry).decode()


def logging_config(level: str = "INFO", json_lines: bool = False) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the server process: readable lines, or JSON lines
    for log shipping."""
    formatter: dict[str, Any] = (
        {"()": JsonLines}
        if json_lines
        else {
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "datefmt": "%Y-%m-%dT%H:%M:%S%z",
        }
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"main": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "main",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "carelevel": {"handlers": ["stderr"], "level": level, "propagate": False},
        },
    }
