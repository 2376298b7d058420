"""Logging without health information.

``carelevel serve`` logs one access line per request from the application (see
``app/runtime/edge.py``), with uvicorn's own access log off, since it prints paths with their query
strings. Whatever else configures logging (a host application, a debugger, ``DEBUG`` levels),
the filters installed here keep submitted and stored values out of every record: tracebacks
are reduced to the exception's type, and the database drivers' records of parameters and rows
are dropped (the engine also hides parameters from its own messages).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

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


class LineGroups(logging.StreamHandler[TextIO]):
    """A stream handler whose lines can be held and then written with one write: the edge
    writes the access lines of all the requests that ended in one turn of the event loop
    together (``written_together``), since under load a turn ends tens of requests and one
    write (a system call) for all their lines costs a fraction of one for each. Nothing is
    held past the block, so a process that dies right after it has written every line."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(sys.stderr if stream is None else stream)
        self._holds = 0
        self._held: list[tuple[str, logging.LogRecord]] = []

    def emit(self, record: logging.LogRecord) -> None:  # called with the handler's lock held
        if not self._holds:
            super().emit(record)
            return
        try:
            self._held.append((self.format(record) + self.terminator, record))
        except Exception:
            self.handleError(record)

    def hold(self) -> None:
        """Keep lines from now on until ``write_held()``."""
        self.acquire()
        try:
            self._holds += 1
        finally:
            self.release()

    def write_held(self) -> None:
        """Write the held lines (with one write) and stop holding."""
        self.acquire()
        try:
            self._holds -= 1
            if self._holds or not self._held:
                return
            held, self._held = self._held, []
            try:
                self.stream.write("".join(line for line, _ in held))
                self.flush()
            except Exception:
                self.handleError(held[0][1])
        finally:
            self.release()


@contextlib.contextmanager
def written_together(logger: logging.Logger) -> Iterator[None]:
    """The lines that ``logger``'s records make in the block, written together at its end by
    every ``LineGroups`` handler they reach (others write as they always do)."""
    grouping: list[LineGroups] = []
    current: logging.Logger | None = logger
    while current is not None:
        grouping += (h for h in current.handlers if isinstance(h, LineGroups))
        current = current.parent if current.propagate else None
    for handler in grouping:
        handler.hold()
    try:
        yield
    finally:
        for handler in grouping:
            handler.write_held()


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
                "()": LineGroups,
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
