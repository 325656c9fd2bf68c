"""The command line: help texts, init/check, exit statuses, one-line errors without tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from digest.cli import main

SAMPLES = Path(__file__).resolve().parent / "fixtures" / "samples"
COMMANDS = ["init", "check", "fetch", "preview", "run", "daemon", "seen", "subscribers", "serve"]


def digest(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real command in a subprocess, as a user or cron would."""
    return subprocess.run(
        [sys.executable, "-m", "digest", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: digest {command}" in out
    assert "example:\n  digest" in out


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(command in out for command in COMMANDS)


def test_init_writes_the_example_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "digest.toml"
    assert main(["init", str(target)]) == 0
    example = Path(__file__).resolve().parent.parent / "config.example.toml"
    assert target.read_text() == example.read_text()
    assert main(["init", str(target)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["--config", str(target), "check"]) == 0
    assert "OK" in capsys.readouterr().out


def test_run_on_the_starter_config_says_it_reads_only_the_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    starter = str(tmp_path / "digest.toml")
    assert main(["init", starter]) == 0
    capsys.readouterr()
    assert main(["--config", starter, "run"]) == 0  # offline: no source fails
    captured = capsys.readouterr()
    assert "source failed" not in captured.out
    assert "reads only the bundled sample days" in captured.err
    assert "hf-api [[sources]]" in captured.err


def test_a_config_without_sources_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "digest.toml"
    config.write_text('[[subscribers]]\nemail = "ada@example.org"\n')
    assert main(["--config", str(config), "check"]) == 0
    err = capsys.readouterr().err
    assert "has no [[sources]]" in err and "bundled sample days" not in err


def test_a_config_with_its_own_pages_gets_no_samples_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(_demo_config(tmp_path)), "check"]) == 0
    assert "bundled sample days" not in capsys.readouterr().err


def test_check_reports_each_problem_on_one_line_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "digest.toml"
    config.write_text(
        "[digest]\nlookback_days = 'soon'\n\n[[subscribers]]\nemial = 'a@example.org'\n"
    )
    result = digest("--config", str(config), "check", cwd=tmp_path)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("digest: error:")]
    assert len(errors) == 3, result.stderr  # wrong type, misspelt key, missing email
    assert any(":2: digest.lookback_days:" in line for line in errors)
    assert any(
        ":5: subscribers[0].emial: unknown key; did you mean 'email'?" in line for line in errors
    )
    assert any("subscribers[0].email: required key is missing" in line for line in errors)
    assert "Traceback" not in result.stderr


def test_missing_config_is_a_usage_error(tmp_path: Path) -> None:
    result = digest("check", cwd=tmp_path, env={"DIGEST_CONFIG": ""})
    assert result.returncode == 2
    assert "digest.toml: no such config file" in result.stderr
    assert "digest init" in result.stderr


def test_bad_date_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "--date", "yesterday"])
    assert exited.value.code == 2
    assert "not a date like" in capsys.readouterr().err


@pytest.mark.parametrize(
    "make_input",
    [
        pytest.param(
            lambda d: _copy(SAMPLES / "hf" / "bad_2024-12-11_repr_strings.json", d),
            id="repr-strings",
        ),
        pytest.param(lambda d: _write(d / "empty.txt", b""), id="empty"),
        pytest.param(lambda d: _write(d / "noise.bin", bytes(range(256)) * 8), id="binary"),
        pytest.param(
            lambda d: _write(
                d / "cut.html", (SAMPLES / "hf" / "page_2024-08-01.html").read_bytes()[:4000]
            ),
            id="truncated-html",
        ),
        pytest.param(
            lambda d: _write(
                d / "other.html",
                b"<html><head><title>Blog</title></head><body><p>Hi</p></body></html>",
            ),
            id="not-daily-papers",
        ),
    ],
)
def test_bad_input_gives_one_line_naming_the_file(tmp_path: Path, make_input: object) -> None:
    path: Path = make_input(tmp_path)  # type: ignore[operator]
    result = digest("fetch", "--source", str(path), cwd=tmp_path, env={"DIGEST_CONFIG": ""})
    assert result.returncode in (1, 2)
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, result.stderr
    assert path.name in errors[0]
    assert "Traceback" not in result.stderr


def test_fetch_json_prints_every_paper_once(tmp_path: Path) -> None:
    import json

    result = digest(
        "fetch",
        "--json",
        "--source",
        str(SAMPLES / "text-pages" / "*.txt"),
        cwd=tmp_path,
        env={"DIGEST_CONFIG": ""},
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 178
    assert len({r["key"] for r in records}) == 178
    required = {
        "key",
        "arxiv_id",
        "title",
        "abstract",
        "authors",
        "published",
        "upvotes",
        "url",
        "sources",
    }
    assert required <= set(records[0])
    reckoning = [r for r in records if r["title"].startswith("RECKONING")]
    assert len(reckoning) == 1 and len(reckoning[0]["sources"]) == 2


def _copy(source: Path, folder: Path) -> Path:
    return _write(folder / source.name, source.read_bytes())


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _demo_config(folder: Path) -> Path:
    (folder / "pages").mkdir()
    for page in (SAMPLES / "text-pages").glob("*.txt"):
        (folder / "pages" / page.name).write_bytes(page.read_bytes())
    config = folder / "digest.toml"
    config.write_text(
        '[[sources]]\nkind = "page"\npath = "pages/*.txt"\n'
        '[[subscribers]]\nemail = "ada@example.org"\nkeywords = ["attention head"]\n'
    )
    return config


def test_run_then_seen_list_stats_forget_reset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(_demo_config(tmp_path))
    assert main(["--config", config, "run"]) == 0
    out = capsys.readouterr().out
    assert "184 entries, 178 distinct papers, 178 new" in out
    assert "ada@example.org:" in out and "sent" in out
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1

    assert main(["--config", config, "seen", "list", "--limit", "3"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["KEY", "FIRST", "SEEN", "SENT", "TITLE"]
    assert len(rows) == 3
    key = rows[0].split()[0]
    assert main(["--config", config, "seen", "stats"]) == 0
    assert "178" in capsys.readouterr().out

    assert main(["--config", config, "seen", "forget", key]) == 0
    assert main(["--config", config, "seen", "forget", key]) == 2
    assert "no paper" in capsys.readouterr().err
    assert main(["--config", config, "run"]) == 0
    assert "1 new" in capsys.readouterr().out

    assert main(["--config", config, "seen", "reset", "--yes"]) == 0
    assert main(["--config", config, "seen", "stats"]) == 0
    assert "papers" in capsys.readouterr().out


def test_reset_without_a_terminal_needs_yes(tmp_path: Path) -> None:
    config = _demo_config(tmp_path)
    result = digest("--config", str(config), "seen", "reset", cwd=tmp_path)
    assert result.returncode == 2
    assert "--yes" in result.stderr and "Traceback" not in result.stderr


def test_a_second_run_while_one_holds_the_lock_exits_1_without_sending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from digest.store.sqlite import SqliteStore

    config = _demo_config(tmp_path)
    with SqliteStore.open(tmp_path / "digest.db") as store, store.run_lock():
        assert main(["--config", str(config), "run"]) == 1
    assert "another digest run is in progress" in capsys.readouterr().err
    assert not (tmp_path / "outbox").exists()


def test_check_reports_a_broken_template_override(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _demo_config(tmp_path)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "digest.html.j2").write_text("{% if %}broken")
    config.write_text('[digest]\ntemplates = "mine"\n' + config.read_text())
    assert main(["--config", str(config), "check"]) == 2
    err = capsys.readouterr().err
    assert "digest.html.j2" in err and err.count("digest: error:") == 1


def test_two_runs_started_together_exactly_one_sends(tmp_path: Path) -> None:
    import http.server
    import threading

    class SlowApi(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # a slow source keeps the first run inside its lock
            threading.Event().wait(1.5)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"[]")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = _demo_config(tmp_path)
        api = f"http://127.0.0.1:{server.server_address[1]}/api/daily_papers"
        config.write_text(f'[[sources]]\nkind = "hf-api"\nurl = "{api}"\n' + config.read_text())
        command = [sys.executable, "-m", "digest", "--config", str(config), "run"]
        runs = [
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        results = [(run.wait(timeout=60), *run.communicate()) for run in runs]
    finally:
        server.shutdown()
    assert sorted(code for code, _, _ in results) == [0, 1], results
    loser = next(err for code, _, err in results if code == 1)
    assert "another digest run is in progress" in loser and "Traceback" not in loser
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
