"""Operator logging: timestamps on a terminal, syslog priorities under journald, verbosity."""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.log import configure_logging, stderr_is_journal

# --- logging ----------------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers = list(root.handlers)
    levels = {name: logging.getLogger(name).level for name in ("digest", "apscheduler")}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_terminal_logging_has_timestamp_level_and_logger() -> None:
    out = io.StringIO()
    configure_logging(0, env={}, stream=out)
    logging.getLogger("digest").info("daemon starting")
    logging.getLogger("digest").debug("not at verbosity 0")
    logging.getLogger("apscheduler.scheduler").warning("APScheduler's own copy")
    line = out.getvalue().strip()
    assert "\n" not in line
    stamp, level_and_rest = line[:23], line[24:]
    dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")
    assert level_and_rest == "INFO digest: daemon starting"


@pytest.mark.usefixtures("restore_logging")
def test_verbosity_levels() -> None:
    out = io.StringIO()
    configure_logging(-1, env={}, stream=out)
    logging.getLogger("digest").info("hidden")
    logging.getLogger("digest").warning("shown")
    configure_logging(1, env={}, stream=out)  # replaces the handler: no line twice
    logging.getLogger("digest.pipeline").debug("debug shown")
    logging.getLogger("apscheduler.scheduler").info("scheduler info shown")
    text = out.getvalue()
    assert "hidden" not in text
    assert text.count("shown") == 3
    assert text.count("WARNING digest: shown") == 1


@pytest.mark.usefixtures("restore_logging")
def test_journald_gets_syslog_priorities_and_no_timestamp(tmp_path: Path) -> None:
    with open(tmp_path / "journal", "w+", encoding="utf-8") as stream:
        stat = os.fstat(stream.fileno())
        env = {"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"}
        assert stderr_is_journal(env, stream)
        configure_logging(0, env=env, stream=stream)
        logger = logging.getLogger("digest")
        logger.warning("run finished with exit status 1")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("run failed")
        stream.flush()
        lines = (tmp_path / "journal").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "<4>WARNING digest: run finished with exit status 1"
    assert lines[1] == "<3>ERROR digest: run failed"
    assert all(line.startswith("<3>") for line in lines[2:])
    assert lines[-1] == "<3>RuntimeError: boom"


def test_journal_stream_of_another_file_is_not_the_journal(tmp_path: Path) -> None:
    with open(tmp_path / "a", "w") as first, open(tmp_path / "b", "w") as second:
        stat = os.fstat(first.fileno())
        env = {"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"}
        assert stderr_is_journal(env, first)
        assert not stderr_is_journal(env, second)  # inherited, but stderr was redirected
    assert not stderr_is_journal({"JOURNAL_STREAM": "garbage"}, io.StringIO())
    assert not stderr_is_journal({}, io.StringIO())
