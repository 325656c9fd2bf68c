"""`digest check` beyond the schema: interests, templates, sources, the store, the channel, and
a subscriber whose own part of an email cannot fit."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import pytest

from digest.app import Digest
from digest.config import load_config
from digest.errors import ConfigError
from digest.models import Paper
from digest.store import open_store

BUNDLED = Path(__file__).resolve().parent.parent / "templates" / "digest.html.j2"


def write(folder: Path, text: str) -> Path:
    path = folder / "digest.toml"
    path.write_text(text)
    return path


def test_a_subscriber_whose_email_cannot_fit_is_named(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    bloated = BUNDLED.read_text().replace(
        "<body",
        '{% if subscriber_email == "big@example.org" %}' + "x" * 20_000 + "{% endif %}<body",
    )
    (tmp_path / "mine" / "digest.html.j2").write_text(bloated)
    config = load_config(
        write(
            tmp_path,
            '[digest]\nmax_html_bytes = 12000\ntemplates = "mine"\n'
            '[[subscribers]]\nemail = "ada@example.org"\n'
            '[[subscribers]]\nemail = "big@example.org"\nname = "Big"\n',
        )
    )
    with pytest.raises(
        ConfigError, match=r"big@example\.org: the email layout alone exceeds"
    ) as caught:
        Digest(config).check()
    assert caught.value.where == str(tmp_path / "digest.toml")


def test_a_glob_matching_nothing_fails_and_an_unset_password_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    glob = write(tmp_path, '[[sources]]\nkind = "page"\npath = "saved/*.txt"\n')
    with pytest.raises(ConfigError, match=r"sources\[0\].path: the pattern matches no file"):
        Digest(load_config(glob)).check()
    monkeypatch.delenv("SOME_PW", raising=False)
    smtp = write(
        tmp_path,
        '[delivery]\nmethod = "smtp"\n[delivery.smtp]\nhost = "smtp.example.org"\n'
        'username = "me"\npassword_env = "SOME_PW"\n',
    )
    with pytest.raises(ConfigError, match=r"password_env: \$SOME_PW is not set") as caught:
        Digest(load_config(smtp)).check()
    assert caught.value.hint and "export SOME_PW" in caught.value.hint
    monkeypatch.setenv("SOME_PW", "secret")
    report = Digest(load_config(smtp)).check()
    assert any("nobody is subscribed" in warning for warning in report.warnings)
    assert any(line.startswith("  delivery: smtp -> smtp.example.org:587") for line in report.lines)


def test_check_lists_sources_and_subscribers(tmp_path: Path) -> None:
    subscribers = "".join(f'[[subscribers]]\nemail = "r{n}@example.org"\n' for n in range(8))
    text = '[[sources]]\nkind = "page"\npath = "bundled:samples/*.txt"\n' + subscribers
    report = Digest(load_config(write(tmp_path, text))).check()
    assert "  sources (1):" in report.lines
    assert any("subscribers (8): r0@example.org, r1@example.org" in line and "and 3 more" in line
               for line in report.lines)  # fmt: skip
    assert report.warnings == [
        "messages offer no way to unsubscribe: set [server] base_url (and run `digest serve`) "
        "or [delivery] unsubscribe_mailto; Gmail and Yahoo require one-click unsubscribe of "
        "bulk senders"
    ]
    assert "  unsubscribe: none" in report.lines


def test_check_names_the_unsubscribe_ways_and_needs_the_links_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (
        '[[sources]]\nkind = "page"\npath = "bundled:samples/*.txt"\n'
        '[delivery]\nunsubscribe_mailto = "mailto:leave@example.org"\n'
        '[server]\nbase_url = "https://digest.example.org"\n'
        '[[subscribers]]\nemail = "a@example.org"\nfrequency = "weekly"\n'
    )
    config = load_config(write(tmp_path, text))
    monkeypatch.delenv("DIGEST_SERVER_SECRET", raising=False)
    with pytest.raises(ConfigError, match=r"\$DIGEST_SERVER_SECRET is not set"):
        Digest(config).check()
    monkeypatch.setenv("DIGEST_SERVER_SECRET", "s" * 32)
    report = Digest(config).check()
    assert (
        "  unsubscribe: one-click pages at https://digest.example.org (run `digest serve`); "
        "mailto:leave@example.org"
    ) in report.lines
    assert "  cadence: 0 daily, 1 weekly" in report.lines
    assert report.warnings == []


def test_a_liked_paper_todays_local_sources_carry_is_known(tmp_path: Path) -> None:
    sample = Path(__file__).resolve().parent / "fixtures" / "samples" / "hf" / "api_2025-10-06.json"
    (tmp_path / "day.json").write_bytes(sample.read_bytes())
    text = (
        '[[sources]]\nkind = "page"\npath = "day.json"\n'
        '[[subscribers]]\nemail = "ada@example.org"\nlike = ["2510.01459v2", "2501.99999"]\n'
    )
    report = Digest(load_config(write(tmp_path, text))).check()
    (warning,) = [w for w in report.warnings if "liked papers not known" in w]
    assert "2501.99999" in warning and "2510.01459" not in warning


def test_check_counts_readers_verdicts_and_warns_without_the_semantic_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = '[[subscribers]]\nemail = "ada@example.org"\nkeywords = ["agent"]\n'
    config = load_config(write(tmp_path, text))
    assert not any("feedback" in line for line in Digest(config).check().lines)
    now = dt.datetime(2025, 10, 6, tzinfo=dt.UTC)
    with open_store(str(tmp_path / "digest.db"), base_dir=tmp_path) as store:
        (paper,) = store.observe([Paper(arxiv_id="2510.01459", title="LSPO")], now).new
        store.record_verdict("ada@example.org", paper.key, 1, now)
    report = Digest(config).check()
    assert "  feedback: 1 verdict from 1 reader (their profiles rank their digests)" in report.lines
    found = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "wordllama" else found(name)
    )
    (warning,) = [w for w in Digest(config).check().warnings if "verdicts" in w]
    assert "kept but not used without the semantic extra" in warning


def test_a_min_similarity_of_the_old_cosine_scale_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("wordllama", reason="the semantic extra is not installed")
    from digest.cli import main

    readers = "".join(
        f'[[subscribers]]\nemail = "r{n}@example.org"\nabout = ["video generation"]\n'
        f"min_similarity = {0.455 if n < 7 else 0.99}\n"
        for n in range(9)
    )
    path = write(tmp_path, readers + '[[subscribers]]\nemail = "k@example.org"\nkeywords = ["x"]\n')
    assert main(["--config", str(path), "check"]) == 0
    err = capsys.readouterr().err
    assert "r0@example.org: min_similarity = 0.455 is the share of recent papers" in err
    assert "picks about 54% of all papers; the default is 0.975" in err
    assert "and 2 more readers set min_similarity so low" in err  # 7 of them, 5 named
    assert "r7@example.org" not in err and "k@example.org: min_similarity" not in err


def test_a_description_of_filler_alone_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from digest.cli import main

    readers = (
        '[[subscribers]]\nemail = "ada@example.org"\n'
        'about = ["Papers about my research", "legged locomotion"]\n'
        '[[subscribers]]\nemail = "bob@example.org"\nabout = ["I want to follow research on 3D"]\n'
    )
    assert main(["--config", str(write(tmp_path, readers)), "check"]) == 0
    err = capsys.readouterr().err
    assert "ada@example.org: about 'Papers about my research' names no topic" in err
    assert "legged locomotion" not in err and "bob@example.org" not in err


def test_check_reads_the_environment_it_is_given(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            '[delivery]\nmethod = "smtp"\n[delivery.smtp]\nhost = "smtp.example.org"\n'
            'username = "me"\npassword_env = "CHECK_PW"\n',
        )
    )
    with pytest.raises(ConfigError, match=r"\$CHECK_PW is not set"):
        Digest(config, env={}).check()
    elsewhere = tmp_path / "elsewhere.db"
    report = Digest(config, env={"CHECK_PW": "x", "DIGEST_STORE_URL": str(elsewhere)}).check()
    (store_line,) = [line for line in report.lines if line.startswith("  store:")]
    assert f"sqlite {elsewhere}: reachable" in store_line
    assert not elsewhere.exists()  # read-only: check creates no store
