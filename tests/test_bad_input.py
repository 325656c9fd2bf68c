"""Bad input, every kind the field has sent: one line naming the file or the field, exit 1 or 2,
never a traceback, and nothing recorded as sent that was not."""

from __future__ import annotations

import http.server
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

PAGES = Path(__file__).resolve().parent / "fixtures" / "samples" / "text-pages"
SUBSCRIBER = '[[subscribers]]\nemail = "ada@example.org"\nkeywords = ["model"]\n'


def digest(*args: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "digest", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
    )


def errors(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if "error:" in line]


def nothing_sent(folder: Path) -> bool:
    """No message in the outbox and no digest recorded as sent."""
    store = folder / "digest.db"
    if store.exists():
        with sqlite3.connect(store) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            if "digests" in tables and conn.execute(
                "SELECT COUNT(*) FROM digests WHERE status = 'sent'"
            ).fetchone() != (0,):
                return False
    return not list((folder / "outbox").glob("*.eml")) if (folder / "outbox").exists() else True


@pytest.fixture
def redirector() -> Iterator[str]:
    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", urllib.parse.unquote(self.path.partition("?to=")[2]))
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/paper?to="
    finally:
        server.shutdown()


# --- item 10: inputs that used to end in a traceback ---------------------------------------------


def deep_json(folder: Path) -> str:
    (folder / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    return str(folder / "deep.json")


def fifo(folder: Path) -> str:
    os.mkfifo(folder / "pipe.txt")
    return str(folder / "pipe.txt")


@pytest.mark.parametrize(
    ("make", "named"),
    [
        (deep_json, "deep.json"),
        (fifo, "pipe.txt"),
        (lambda folder: "/dev/zero", "/dev/zero"),
        (lambda folder: "~nosuchuser/pages/x.txt", "nosuchuser"),
        (lambda folder: str(folder / "nothing" / "*.txt"), "matches no file"),
    ],
    ids=["deep-json", "fifo", "dev-zero", "no-such-user", "empty-glob"],
)
def test_a_bad_source_file_is_one_line_naming_it(tmp_path: Path, make: object, named: str) -> None:
    location = make(tmp_path)  # type: ignore[operator]
    result = digest("fetch", "--source", location, cwd=tmp_path)
    assert result.returncode in (1, 2), result.stderr
    assert len(errors(result)) == 1 and named in errors(result)[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("scheme", ["javascript:alert(1)", "mailto:eve@example.org", "data:,x"])
def test_a_redirect_to_another_scheme_is_one_line(
    tmp_path: Path, redirector: str, scheme: str
) -> None:
    result = digest("fetch", "--source", redirector + urllib.parse.quote(scheme), cwd=tmp_path)
    assert result.returncode == 1
    (line,) = errors(result)
    assert redirector in line and "not an http(s) URL" in line
    assert "Traceback" not in result.stderr


def test_a_lone_surrogate_in_json_is_replaced_not_fatal(tmp_path: Path) -> None:
    entry = '[{"paper": {"id": "2401.00001", "title": "Broken \\ud800 title", "upvotes": 1}}]'
    (tmp_path / "s.json").write_text(entry)
    (tmp_path / "digest.toml").write_text(
        '[[sources]]\nkind = "page"\npath = "s.json"\n[[subscribers]]\n'
        'email = "ada@example.org"\nkeywords = ["broken"]\n'
    )
    fetched = digest("fetch", "--json", "--source", "s.json", cwd=tmp_path)
    assert fetched.returncode == 0, fetched.stderr
    assert json.loads(fetched.stdout)["title"] == "Broken \ufffd title"
    ran = digest("--config", "digest.toml", "run", cwd=tmp_path)
    assert ran.returncode == 0 and "Traceback" not in ran.stderr, ran.stderr
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


CONFIG_ERRORS = [
    ('[[sources]]\nkind = "page"\nurl = "http://[::1"\n', "sources[0].url"),
    ('[[sources]]\nkind = "page"\npath = "pages/\\u0000x.txt"\n', "sources[0].path"),
    ('[digest]\nstore = "digest\\u0000.db"\n', "digest.store"),
    ('[delivery]\nfrom = "Paper Digest"\n', "delivery.from"),
    ('[delivery]\nfrom = "a@x.org, b@evil.com"\n', "delivery.from"),
    ('[delivery]\nfrom = "Digest\\u2028 <d@example.org>"\n', "delivery.from"),
    ('[digest]\ntitle = "Papers\\u0085today"\n', "digest.title"),
    ('[[subscribers]]\nemail = "ada@example.org"\nname = "Ada\\u000bLovelace"\n', "name"),
    *(
        (f'[[subscribers]]\nemail = "{address}"\n', "subscribers[0].email")
        for address in (
            "a:b@c.de",
            "a\\\\b@c.de",
            "a(b)@c.de",
            "a@[127.0.0.1].x",
            "a@b..com",
            "a@" + "x" * 70 + ".com",
            "jörg@example.org",
        )
    ),
]


@pytest.mark.parametrize(
    ("text", "field"), CONFIG_ERRORS, ids=[f"{i}" for i in range(len(CONFIG_ERRORS))]
)
def test_check_refuses_what_run_could_not_send(tmp_path: Path, text: str, field: str) -> None:
    (tmp_path / "digest.toml").write_text(text)
    for command in ("check", "run"):
        result = digest("--config", "digest.toml", command, cwd=tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        (line,) = errors(result)
        assert "digest.toml" in line and field in line, result.stderr
        assert "Traceback" not in result.stderr
    assert nothing_sent(tmp_path) and not (tmp_path / "digest.db").exists()


def test_a_store_under_a_regular_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "digest.toml").write_text('[digest]\nstore = "afile/digest.db"\n' + SUBSCRIBER)
    result = digest("--config", "digest.toml", "run", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = errors(result)
    assert "afile" in line and "Traceback" not in result.stderr


def test_a_config_that_is_a_fifo_is_one_line(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "digest.toml")
    result = digest("--config", "digest.toml", "check", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = errors(result)
    assert "digest.toml" in line and "regular file" in line


def test_control_characters_in_a_name_are_dropped_from_the_header(tmp_path: Path) -> None:
    shutil.copytree(PAGES, tmp_path / "pages")
    (tmp_path / "digest.toml").write_text(
        '[[sources]]\nkind = "page"\npath = "pages/*.txt"\n[[subscribers]]\n'
        'email = "ada@example.org"\nname = "Ada\\u0000\\u001b[31m\\u0007 Lovelace"\n'
        'keywords = ["model"]\n'
    )
    assert digest("--config", "digest.toml", "check", cwd=tmp_path).returncode == 0
    assert digest("--config", "digest.toml", "run", cwd=tmp_path).returncode == 0
    (eml,) = (tmp_path / "outbox").glob("*.eml")
    to = next(line for line in eml.read_bytes().splitlines() if line.startswith(b"To:"))
    assert all(byte >= 0x20 for byte in to) and b"Lovelace" in to and b"ada@example.org" in to


TEMPLATES = {
    "divide": ("digest.txt.j2", "{{ 1 // 0 }}\n", "ZeroDivisionError"),
    "type": ("digest.txt.j2", "{{ title + 1 }}\n", "TypeError"),
    "recursive": ("digest.txt.j2", '{% include "digest.txt.j2" %}\n', "itself"),
    "huge": ("digest.txt.j2", "{{ range(10**12)|list|length }}\n", "memory"),
    "not-utf8": ("paper.html.j2", "\udcff", "UTF-8"),
}


@pytest.mark.parametrize("case", sorted(TEMPLATES))
def test_a_template_that_fails_is_one_line_with_its_file(tmp_path: Path, case: str) -> None:
    name, body, words = TEMPLATES[case]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / name).write_bytes(body.encode("utf-8", "surrogateescape"))
    (tmp_path / "digest.toml").write_text('[digest]\ntemplates = "mine"\n' + SUBSCRIBER)
    result = digest("--config", "digest.toml", "check", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    (line,) = errors(result)
    assert name in line and words.lower() in result.stderr.lower(), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "command", [["fetch", "--source", "pages/*.txt"], ["check"], ["seen", "list"], ["run"]]
)
def test_a_closed_stdout_ends_quietly(tmp_path: Path, command: list[str]) -> None:
    shutil.copytree(PAGES, tmp_path / "pages")
    (tmp_path / "digest.toml").write_text(
        '[[sources]]\nkind = "page"\npath = "pages/*.txt"\n' + SUBSCRIBER
    )
    digest("--config", "digest.toml", "run", "--dry-run", cwd=tmp_path)
    digest("--config", "digest.toml", "run", cwd=tmp_path) if command == ["seen", "list"] else None
    pipeline = subprocess.run(
        f"{sys.executable} -m digest --config digest.toml {shlex.join(command)} | head -1",
        shell=True,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"},
    )
    assert "Traceback" not in pipeline.stderr and "BrokenPipe" not in pipeline.stderr
    assert pipeline.stdout.strip()


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ('[digest]\nlookback_days = "3"\n', "lookback_days"),
        ('[digest]\nsend_empty = "yes"\n', "send_empty"),
        ('[fetch]\nretries = true\n', "retries"),
        ("[fetch]\nmax_bytes = 1000000000000000\n", "max_bytes"),
        ("[fetch]\nmax_entries = " + "9" * 5000 + "\n", "max_entries"),
        ('[server]\nbase_url = "https://digest.example.org/a b"\n', "base_url"),
        ('[server]\nbase_url = "https://digest.example.org/\\">"\n', "base_url"),
        ("[digest]\nlookback_days = " + "[" * 10_000 + "]" * 10_000 + "\n", "digest.toml"),
        (SUBSCRIBER.replace('keywords = ["model"]', 'max_papers = "5"'), "max_papers"),
    ],
    ids=["string-number", "string-bool", "bool-number", "absurd-bytes", "5000-digits",
         "url-space", "url-quote", "deep-arrays", "subscriber-string"],
)  # fmt: skip
def test_a_config_value_of_the_wrong_type_is_one_line_and_exit_2(
    tmp_path: Path, config: str, named: str
) -> None:
    text = config if "subscribers" in config else config + SUBSCRIBER
    (tmp_path / "digest.toml").write_text(text)
    for command in ("check", "run"):
        result = digest(command, cwd=tmp_path)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        assert errors(result) and named in errors(result)[0], result.stderr
    assert nothing_sent(tmp_path)


def test_init_where_it_cannot_write_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    for target in ("/proc/digest.toml", str(tmp_path / "a-file" / "digest.toml")):
        result = digest("init", target, cwd=tmp_path)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert len(errors(result)) == 1 and "digest.toml" in errors(result)[0]


def test_numbers_and_references_no_parser_can_take_are_one_line_each(tmp_path: Path) -> None:
    samples = Path(__file__).resolve().parent / "fixtures" / "samples" / "hf"
    api = (samples / "api_2024-03-21.json").read_text(encoding="utf-8")
    (tmp_path / "api.json").write_text(api.replace('"upvotes":47', '"upvotes":' + "9" * 5000, 1))
    page = (samples / "page_2024-08-01.html").read_text(encoding="utf-8")
    huge = page.replace("&quot;upvotes&quot;:", "&quot;upvotes&quot;:" + "9" * 5000, 1)
    (tmp_path / "page.html").write_text(huge, encoding="utf-8")
    feed = (Path(__file__).resolve().parent / "fixtures" / "sources" / "feed_rss.xml").read_text()
    (tmp_path / "feed.xml").write_text(feed.replace("Zichen Wen", "Zichen &#x110000; Wen", 1))
    assert '"upvotes":' + "9" * 10 in (tmp_path / "api.json").read_text()
    result = digest("fetch", "--source", "api.json", cwd=tmp_path)
    assert result.returncode == 1 and len(errors(result)) == 1, result.stderr
    assert "api.json" in errors(result)[0] and "Traceback" not in result.stderr
    for source in ("page.html", "feed.xml"):  # the cards, the rest of the feed: still read
        result = digest("fetch", "--source", source, cwd=tmp_path)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        assert result.stdout.count("\n") >= 4
    limit = digest("seen", "list", "--limit", "1" + "0" * 30, cwd=tmp_path)
    assert limit.returncode == 2 and "--limit" in limit.stderr and "Traceback" not in limit.stderr
