"""Log records as text or as JSON lines (`CONVERGENCE_LOG_FORMAT`)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from services.logs import JsonFormatter, configure_logging
from services.settings import Settings


def record(message: str = "closing %s automatically", *args: object, **extra: object) -> logging.LogRecord:
    made = logging.getLogger("services.settlement.autoclose").makeRecord(
        "services.settlement.autoclose", logging.INFO, __file__, 1, message, args or ("2026-03",), None, extra=extra)
    made.created = 1_773_484_920.25  # 2026-03-14T10:42:00.250Z
    return made


def test_a_record_is_one_json_object_with_time_level_logger_message_and_service():
    line = JsonFormatter("settlement").format(record())
    assert json.loads(line) == {"time": "2026-03-14T10:42:00.250+00:00", "level": "INFO",
                                "logger": "services.settlement.autoclose", "message": "closing 2026-03 automatically",
                                "service": "settlement"}
    assert datetime.fromisoformat(json.loads(line)["time"]).utcoffset() is not None


def test_fields_passed_with_extra_become_keys_of_their_own():
    line = JsonFormatter("processor").format(record(event_id="e-1001", period="2026-03", partition=3,
                                                    amount=Decimal("24000.00")))
    entry = json.loads(line)
    assert (entry["event_id"], entry["period"], entry["partition"]) == ("e-1001", "2026-03", 3)
    assert entry["amount"] == "24000.00"  # a type JSON has not: its text, exactly


def test_the_fixed_fields_win_over_extra_ones_of_the_same_name():
    assert json.loads(JsonFormatter("query").format(record(service="other", time="then")))["service"] == "query"


def test_uvicorns_coloured_copy_of_the_message_is_left_out():
    assert "color_message" not in json.loads(JsonFormatter("ingest").format(record(color_message="\x1b[36m…")))


def test_a_multi_line_message_and_its_traceback_stay_on_one_line():
    try:
        raise ValueError("bad\nplan")
    except ValueError:
        failed = logging.getLogger("services.plans").makeRecord(
            "services.plans", logging.ERROR, __file__, 1, "plans refused:\n%s", ("line 1\nline 2",), sys.exc_info())
    [line] = JsonFormatter("query").format(failed).splitlines()
    entry = json.loads(line)
    assert entry["message"] == "plans refused:\nline 1\nline 2"
    assert entry["exception"].startswith("Traceback") and "ValueError: bad\nplan" in entry["exception"]


@pytest.fixture
def root_logging() -> Iterator[None]:
    """The root logger as it was before the test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


@pytest.mark.usefixtures("root_logging")
def test_configured_json_sends_every_logger_as_json_lines(capsys: pytest.CaptureFixture[str]):
    configure_logging(Settings(log_format="json", _env_file=None), "ingest")
    logging.getLogger("services.ingest.routes").info("accepted %d", 3, extra={"event_id": "e-1"})
    logging.getLogger("uvicorn.error").debug("below the level: not written")
    [line] = capsys.readouterr().err.splitlines()
    assert json.loads(line) | {"time": "t"} == {"time": "t", "level": "INFO", "logger": "services.ingest.routes",
                                                "message": "accepted 3", "service": "ingest", "event_id": "e-1"}


@pytest.mark.usefixtures("root_logging")
def test_text_is_the_default_and_reads_as_before(capsys: pytest.CaptureFixture[str]):
    configure_logging(Settings(_env_file=None), "up", logging.WARNING)
    logging.getLogger("services.supervisor").warning("processor 0 exited with %s; restarting in %s s", 1, 2)
    logging.getLogger("services.supervisor").info("not written")
    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith(" WARNING services.supervisor: processor 0 exited with 1; restarting in 2 s")


def test_an_unknown_log_format_is_refused():
    with pytest.raises(ValidationError, match="log_format"):
        Settings(log_format="xml", _env_file=None)
