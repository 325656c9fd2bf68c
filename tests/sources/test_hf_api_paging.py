"""``kind = "hf-api"`` against a server that pages as Hugging Face's does: busy days read whole."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sources.hf_server import HfApi, day_of, hf_api
from tests.test_cli import digest

DAY = dt.date(2025, 9, 30)


@pytest.fixture
def api() -> Iterator[HfApi]:
    with hf_api() as running:
        yield running


def config(tmp_path: Path, api: HfApi, extra: str = "") -> Path:
    path = tmp_path / "digest.toml"
    path.write_text(
        f'[[sources]]\nkind = "hf-api"\nurl = "{api.url}"\ndays = 1\n{extra}\n'
        "[fetch]\nretries = 0\n"
        '[delivery]\nmethod = "file"\nfrom = "Digest <digest@example.org>"\n'
        '[[subscribers]]\nemail = "ada@example.org"\n',
        encoding="utf-8",
    )
    return path


def fetched(tmp_path: Path, api: HfApi, *args: str, extra: str = "") -> list[dict[str, object]]:
    done = digest(
        "--config", str(config(tmp_path, api, extra)), "fetch", "--json", *args, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.parametrize("count", [130, 100, 50, 49])
def test_a_busy_day_is_read_whole(tmp_path: Path, api: HfApi, count: int) -> None:
    api.days[DAY] = day_of(count, DAY)
    papers = fetched(tmp_path, api, "--date", DAY.isoformat())
    want = [e["paper"]["id"] for e in api.days[DAY]]
    assert [p["arxiv_id"] for p in papers] == want
    assert all(q["limit"] == "100" and q["date"] == DAY.isoformat() for q in api.queries)
    # pages until one is short: 130 -> p=0, 1; 100 -> p=0, 1 (empty); 50 -> p=0 (50 < 100 but a
    # full page of HF's default size, so p=1 is asked too); 49 -> p=0 alone
    pages = {130: 2, 100: 2, 50: 2, 49: 1}[count]
    assert [q["p"] for q in api.queries] == [str(p) for p in range(pages)]


def test_a_failed_page_fails_the_day_loudly(tmp_path: Path, api: HfApi) -> None:
    api.days[DAY] = day_of(130, DAY)
    api.fail_page = 1
    path = config(tmp_path, api)
    done = digest("--config", str(path), "fetch", "--date", DAY.isoformat(), cwd=tmp_path)
    assert done.returncode == 1
    assert "page 2 (p=1): HTTP 503 Service Unavailable" in done.stderr
    assert "Traceback" not in done.stderr
    assert "0 papers" in done.stderr  # no short day passed off as the whole day


def test_huggingfaces_own_words_are_quoted(tmp_path: Path, api: HfApi) -> None:
    path = config(tmp_path, api).read_text().replace("/api/daily_papers", "/api/daily_paper")
    (tmp_path / "digest.toml").write_text(path)
    done = digest("fetch", "--date", DAY.isoformat(), cwd=tmp_path)
    assert done.returncode == 1
    (line,) = [line for line in done.stderr.splitlines() if "HTTP 404" in line]
    assert "HTTP 404 Not Found: the server says \"Sorry, we can't find the page" in line


def test_a_week_is_read_at_once_with_its_pages(tmp_path: Path, api: HfApi) -> None:
    monday = dt.date(2025, 9, 29)
    week = day_of(120, monday)
    for offset in range(3):  # 40 papers a day, 120 in the week: two pages of the week
        api.days[monday + dt.timedelta(days=offset)] = week[offset * 40 : (offset + 1) * 40]
    papers = fetched(tmp_path, api, "--date", "2025-10-01", extra='period = "week"')
    assert [p["arxiv_id"] for p in papers] == [e["paper"]["id"] for e in week]
    assert {q.get("week") for q in api.queries} == {"2025-W40"}
    assert [q["p"] for q in api.queries] == ["0", "1"]


def test_submitter_selects_one_submitters_papers(tmp_path: Path, api: HfApi) -> None:
    api.days[DAY] = day_of(30, DAY)
    for entry in api.days[DAY][:7]:
        entry["submittedBy"] = {"name": "someone", "fullname": "Some One"}
    papers = fetched(tmp_path, api, "--date", DAY.isoformat(), extra='submitter = "someone"')
    assert [p["arxiv_id"] for p in papers] == [e["paper"]["id"] for e in api.days[DAY][:7]]
    assert {q.get("submitter") for q in api.queries} == {"someone"}


def test_a_submitter_that_could_inject_a_query_is_a_config_error(
    tmp_path: Path, api: HfApi
) -> None:
    path = config(tmp_path, api, 'submitter = "a&date=2020-01-01"')
    done = digest("--config", str(path), "check", cwd=tmp_path)
    assert done.returncode == 2
    assert "submitter" in done.stderr and "Traceback" not in done.stderr
