"""Text that would break the wire, delivered anyway: a CJK abstract without a space in 5,000
characters makes no line longer than SMTP's 998 bytes, so a real server takes the message."""

from __future__ import annotations

import html as html_module
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.smtp_server import Handler, smtp_server

API = Path(__file__).resolve().parent / "fixtures" / "samples" / "hf" / "api_2025-10-06.json"


def digest(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`digest --config CONFIG ARGS...` as a user runs it, in the config's folder."""
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(config), *args],
        capture_output=True, text=True, timeout=120, cwd=config.parent, env=env,
    )  # fmt: skip


CJK = "我们提出了一种新的方法来训练语言模型并在多个基准上取得了最好的结果" * 120  # no spaces


def test_a_cjk_abstract_is_delivered_with_every_line_within_998_bytes(tmp_path: Path) -> None:
    entries = json.loads(API.read_text(encoding="utf-8"))[:3]
    entries[0]["paper"]["summary"] = CJK
    entries[0]["paper"]["title"] = "语言模型训练方法" * 30  # a long title without a space, too
    entries[0]["paper"].pop("ai_summary", None)
    (tmp_path / "day.json").write_text(json.dumps(entries, ensure_ascii=False), encoding="utf-8")
    handler = Handler()
    with smtp_server(handler) as server:
        config = tmp_path / "digest.toml"
        config.write_text(
            '[[sources]]\nkind = "page"\npath = "day.json"\n'
            '[delivery]\nmethod = "smtp"\nfrom = "Digest <digest@example.org>"\n'
            f'[delivery.smtp]\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\n'
            '[[subscribers]]\nemail = "ada@example.org"\n'
            '[[subscribers]]\nemail = "zh@example.org"\nname = "张伟" \n',
            encoding="utf-8",
        )
        done = digest(config, "run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(r.rcpt_tos[0] for r in handler.received) == ["ada@example.org", "zh@example.org"]
    for received in handler.received:
        assert max(len(line) for line in received.data.split(b"\r\n")) <= 998
        message = received.message
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert CJK[:40] in html_module.unescape(html)  # as character references, 7bit
        assert CJK[:40] in text.replace("\n", "")


PAGES = Path(__file__).resolve().parent / "fixtures" / "samples" / "text-pages"
FEED = Path(__file__).resolve().parent / "fixtures" / "sources" / "rss_2025-10-01_huangboming.xml"


def test_one_bad_file_in_a_glob_is_one_failure_and_the_good_papers_go_out(tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "good.txt").write_bytes((PAGES / "000_a074cbbb5062396c.txt").read_bytes())
    bad = (PAGES / "001_bf20a2f13052aac5.txt").read_text(encoding="utf-8")
    (pages / "huge.txt").write_text(bad.replace("Sep 28 2", "Sep 28 " + "9" * 5000, 1))
    (pages / "folder.txt").mkdir()  # a folder among the matches is no page: skipped
    feed = FEED.read_text(encoding="utf-8")
    (tmp_path / "feed.xml").write_text(feed.replace("Norman Paulsen", "Norman &#xD800; Paulsen"))
    (tmp_path / "odd.xml").write_text(feed.replace("encoding='UTF-8'", "encoding='x-nope'"))
    config = tmp_path / "digest.toml"
    config.write_text(
        "[digest]\nlookback_days = 60\n"
        '[[sources]]\nkind = "page"\npath = "pages/*.txt"\n'
        '[[sources]]\nkind = "feed"\npath = "*.xml"\n'
        '[delivery]\nmethod = "file"\noutbox = "outbox"\nfrom = "D <d@example.org>"\n'
        '[[subscribers]]\nemail = "ada@example.org"\nmax_papers = 100\n',
        encoding="utf-8",
    )
    done = digest(config, "run")
    assert done.returncode == 1, done.stdout
    assert "Traceback" not in done.stderr
    failed = [line for line in done.stderr.splitlines() if "source failed" in line]
    assert len(failed) == 2, failed
    assert any("huge.txt" in line for line in failed)
    assert any("odd.xml" in line and "encoding" in line for line in failed)
    (message,) = (tmp_path / "outbox").glob("*.eml")
    text = message.read_text(encoding="utf-8", errors="replace")
    assert "63 distinct papers, 63 new" in done.stdout  # 5 from the good page, 58 from the feed
    assert "Norman" in text or "2509.21361" in text  # the feed with a bad reference still read


INJECTION = "=?utf-8?q?Papers=0D=0ABcc:_victim@evil.example?="


@pytest.mark.parametrize(
    ("table", "key"),
    [("[digest]\ntitle", "digest.title"), ("[delivery]\nlist_id", "delivery.list_id")],
    ids=["title", "list_id"],
)
def test_an_encoded_word_that_decodes_to_a_line_break_is_refused(
    tmp_path: Path, table: str, key: str
) -> None:
    config = tmp_path / "digest.toml"
    delivery = '[delivery]\nmethod = "file"\nfrom = "D <d@example.org>"\n'
    head = f'{table} = "{INJECTION}"\n'
    text = (
        head + delivery.replace("[delivery]\n", "")
        if table.startswith("[delivery]")
        else (head + delivery)
    )
    config.write_text(text + '[[subscribers]]\nemail = "ada@example.org"\n', encoding="utf-8")
    for command in ("check", "run"):
        done = digest(config, command)
        assert done.returncode == 2, done.stdout + done.stderr
        assert key.split(".")[-1] in done.stderr and "one line" in done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "outbox").exists()


def test_a_name_with_such_a_word_is_refused_and_nobody_else_loses_their_digest(
    tmp_path: Path,
) -> None:
    from digest.deliver.message import one_line
    from digest.errors import PermanentDeliveryError

    with pytest.raises(PermanentDeliveryError, match="inject"):
        one_line(INJECTION, where="subscribers[0].name")
    config = tmp_path / "digest.toml"
    config.write_text(
        '[delivery]\nmethod = "file"\nfrom = "D <d@example.org>"\n'
        f'[[subscribers]]\nemail = "ada@example.org"\nname = "{INJECTION}"\n'
        '[[subscribers]]\nemail = "bob@example.org"\n',
        encoding="utf-8",
    )
    done = digest(config, "check")
    assert done.returncode == 2 and "subscribers[0].name" in done.stderr.replace("'", "")
    assert "Traceback" not in done.stderr


def test_an_id_less_item_never_takes_over_the_real_paper(tmp_path: Path) -> None:
    import email
    import email.policy

    real = json.loads(API.read_text(encoding="utf-8"))[0]["paper"]  # 2510.00515, EPIC
    title = " ".join(real["title"].split())
    (tmp_path / "feed.xml").write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>x</title><item>'
        f"<title>{html_module.escape(title)}</title><link>https://evil.example/p</link>"
        "<description>&lt;p&gt;Abstract: zebra unicorn nonsense.&lt;/p&gt;</description>"
        "</item></channel></rss>",
        encoding="utf-8",
    )
    (tmp_path / "api.json").write_text(API.read_text(encoding="utf-8"), encoding="utf-8")
    config = tmp_path / "digest.toml"
    head = (
        '[delivery]\nmethod = "file"\noutbox = "outbox"\nfrom = "D <d@example.org>"\n'
        '[[subscribers]]\nemail = "zebra@example.org"\nkeywords = ["zebra"]\n'
        '[[subscribers]]\nemail = "tokens@example.org"\nkeywords = ["visual tokens"]\n'
    )
    for day, source in (("2025-10-06", "feed.xml"), ("2025-10-07", "api.json")):
        kind = "feed" if source.endswith(".xml") else "page"
        config.write_text(f'[[sources]]\nkind = "{kind}"\npath = "{source}"\n' + head)
        done = digest(config, "run", "--date", day)
        assert done.returncode == 0, done.stderr
    got: dict[str, list[str]] = {}
    for path in sorted((tmp_path / "outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        got.setdefault(str(message["To"]), []).append(body)
    # the feed's version went to who matched it then; the real paper is not sent to them again
    assert len(got["zebra@example.org"]) == 1 and "evil.example" in got["zebra@example.org"][0]
    # and a reader the real paper matches gets it with its own id, link and abstract
    (tokens,) = [b for b in got["tokens@example.org"] if title[:30] in b.replace("\n   ", " ")]
    assert "https://huggingface.co/papers/2510.00515" in tokens
    assert "evil.example" not in tokens and "zebra" not in tokens
