"""Where each process's log records go: text lines for people, or JSON lines for a log pipeline.

`CONVERGENCE_LOG_FORMAT=json` writes one JSON object per line: time (UTC), level, logger, message, the
service's name and every field the call passed with `extra=` (an event id, a period, a partition), so that a
collector indexes them without parsing messages.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from services.settings import Settings

__all__ = ["TEXT_FORMAT", "JsonFormatter", "configure_logging"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# What every record has, whatever the call passed: the rest of a record's attributes came with `extra=`
# (but uvicorn's `color_message`, the message again with terminal colour codes).
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName",
                                                                                   "color_message"}


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON; a traceback goes into `exception`, escaped, never onto lines of its own."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        extra = {key: value for key, value in record.__dict__.items() if key not in _STANDARD}
        entry = {**extra, "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name, "message": record.getMessage(),
                 "service": self.service}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)  # a value JSON has no type for (a Decimal, a Period) as its text


def configure_logging(settings: Settings, service: str, level: int | str = logging.INFO) -> None:
    """Send every record of `level` and above to stderr, in `settings.log_format`, replacing any handler the root
    logger had (libraries' loggers propagate to it)."""
    handler = logging.StreamHandler()
    formatter = JsonFormatter(service) if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    logging.basicConfig(level=level, handlers=[handler], force=True)
