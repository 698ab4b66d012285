"""``--log-format json`` / ``LOAXA_LOG_FORMAT=json``: one JSON object per line."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

import loaxa_cli
from loaxa_cli import LogFormat, log_handler


def lines_of(log_format: LogFormat) -> list[str]:
    """What a logger writes through the commands' handler: a line, an ``extra`` field,
    uvicorn's coloured copy of a message, and an exception."""
    stream = io.StringIO()
    logger = logging.getLogger("loaxa.test.log_format")
    logger.propagate, logger.level = False, logging.DEBUG
    logger.handlers = [log_handler(log_format, stream)]
    try:
        logger.info("đã gửi kế hoạch tới %d loa", 3, extra={"commune": "xa-demo"})
        logger.warning("chậm", extra={"color_message": "\x1b[31mchậm\x1b[0m"})
        try:
            raise ValueError("a broken plan")
        except ValueError:
            logger.exception("publishing plans failed")
    finally:
        logger.handlers = []
    return stream.getvalue().splitlines()


def test_json_lines_carry_time_level_logger_message_and_the_exception() -> None:
    started = datetime.now(UTC)
    lines = lines_of(LogFormat.json)
    assert len(lines) == 3  # the traceback stays inside its line
    info, warning, error = (json.loads(line) for line in lines)
    for record in (info, warning, error):
        ts = datetime.fromisoformat(record["ts"])
        assert ts.utcoffset() == timedelta(0)
        assert started - timedelta(seconds=1) <= ts <= datetime.now(UTC)
        assert record["logger"] == "loaxa.test.log_format"
    assert (info["level"], info["msg"]) == ("INFO", "đã gửi kế hoạch tới 3 loa")
    assert info["commune"] == "xa-demo" and "exc" not in info
    assert "đã gửi" in lines[0]  # readable, not \u-escaped
    assert warning["level"] == "WARNING" and "color_message" not in warning
    assert error["level"] == "ERROR" and error["msg"] == "publishing plans failed"
    assert error["exc"].startswith("Traceback") and "ValueError: a broken plan" in error["exc"]


def test_text_stays_as_it_was() -> None:
    lines = lines_of(LogFormat.text)
    assert lines[0].endswith(" INFO loaxa.test.log_format: đã gửi kế hoạch tới 3 loa")
    assert "Traceback" in "\n".join(lines)
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[0])


@pytest.mark.parametrize(("args", "env", "want"), [
    ([], {}, LogFormat.text),
    (["--log-format", "json"], {}, LogFormat.json),
    ([], {"LOAXA_LOG_FORMAT": "json"}, LogFormat.json),
    (["--log-format", "text"], {"LOAXA_LOG_FORMAT": "json"}, LogFormat.text),
])
def test_the_option_and_the_environment_reach_setup_logging(
        monkeypatch, tmp_path: Path, args: list[str], env: dict[str, str],
        want: LogFormat) -> None:
    seen: list[LogFormat] = []
    monkeypatch.setattr(loaxa_cli, "setup_logging", lambda level, fmt: seen.append(fmt))
    result = CliRunner().invoke(loaxa_cli.app, ["edge", "run", "--config",
                                                str(tmp_path / "missing.yaml"), *args],
                                env=env)
    assert result.exit_code == 2  # the missing config, after logging was set up
    assert seen == [want]


def test_an_unknown_format_is_refused() -> None:
    result = CliRunner().invoke(loaxa_cli.app, ["edge", "run", "--config", "x.yaml",
                                                "--log-format", "xml"])
    assert result.exit_code == 2 and "xml" in result.output
