"""The config file: schema, error messages with file:line and fixes, paths, the example file."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from digest.config import (
    bundled_path,
    config_schema,
    find_config_path,
    load_config,
    parse_config,
)
from digest.errors import ConfigError
from digest.sources.hf_api import HfApiSource

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


def problems(text: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "digest.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value).splitlines()


def test_example_config_is_valid_and_complete() -> None:
    config = load_config(EXAMPLE)
    assert [s.kind for s in config.sources] == ["page"]
    assert config.samples_only
    assert config.delivery.method == "file"
    assert config.subscribers[0].email == "ada@example.org"


def test_example_live_source_works_once_uncommented(tmp_path: Path) -> None:
    lines = EXAMPLE.read_text().splitlines()
    start = lines.index("# [[sources]]")
    for i in range(start, start + 5):  # the five lines the comment above them names
        lines[i] = lines[i].removeprefix("# ")
    config = parse_config("\n".join(lines), tmp_path / "digest.toml")
    assert [s.kind for s in config.sources] == ["hf-api", "page"]
    api = config.sources[0]
    assert isinstance(api, HfApiSource) and api.api_url == "https://huggingface.co/api/daily_papers"
    assert not config.samples_only


def test_empty_file_gives_working_defaults(tmp_path: Path) -> None:
    config = parse_config("", tmp_path / "digest.toml")
    assert config.digest.title == "Daily Papers digest"
    assert config.digest.lookback_days == 3
    assert config.sources == () and not config.samples_only
    assert config.store_path == tmp_path / "digest.db"
    assert config.delivery.sender.startswith("Paper Digest")


def test_misspelt_key_gets_line_and_did_you_mean(tmp_path: Path) -> None:
    lines = problems('[[subscribers]]\nemail = "ada@example.org"\nexlude = ["quantum"]\n', tmp_path)
    assert lines == [
        f"{tmp_path / 'digest.toml'}:3: subscribers[0].exlude: unknown key; did you mean 'exclude'?"
    ]


def test_wrong_type_names_line_value_and_field(tmp_path: Path) -> None:
    lines = problems("[digest]\ntitle = 'x'\nlookback_days = 'three'\n", tmp_path)
    assert len(lines) == 1
    assert lines[0].startswith(f"{tmp_path / 'digest.toml'}:3: digest.lookback_days: ")
    assert "'three'" in lines[0] and "integer" in lines[0]


def test_missing_required_field_points_at_its_table(tmp_path: Path) -> None:
    text = '[[subscribers]]\nemail = "a@example.org"\n\n[[subscribers]]\nname = "Bob"\n'
    lines = problems(text, tmp_path)
    assert lines == [
        f"{tmp_path / 'digest.toml'}:4: subscribers[1].email: required key is missing; "
        "add email = ..."
    ]


def test_each_problem_is_one_line(tmp_path: Path) -> None:
    text = (
        "[digest]\nlookback_days = 'three'\ntimezone = 'Mars/Olympus'\n"
        "[delivery]\nmethod = 'pigeon'\n"
        "[[subscribers]]\nemail = 'not-an-address'\n"
    )
    lines = problems(text, tmp_path)
    assert len(lines) == 4
    assert all(re.match(r".*digest\.toml:\d+: [a-z_\[\]0-9.]+: ", line) for line in lines), lines
    assert any("Mars/Olympus" in line and "IANA" in line for line in lines)
    assert any("delivery.method" in line and "'file'" in line for line in lines)


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    lines = problems('[digest]\ntitle = "unterminated\n', tmp_path)
    assert len(lines) == 1
    assert "not valid TOML" in lines[0] and "line 2" in lines[0]


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.toml")
    assert "nope.toml" in str(caught.value)
    assert caught.value.hint is not None and "digest init" in caught.value.hint


@pytest.mark.parametrize(
    ("interests", "expected"),
    [
        ('keywords = ["agent", ""]', "keywords has an empty entry"),
        ('keywords = ["!!"]', "has no letters or digits"),
        ('keywords = ["Agent"]\nexclude = ["agent"]', "both wanted and excluded"),
    ],
)
def test_invalid_interests_name_the_subscriber(
    tmp_path: Path, interests: str, expected: str
) -> None:
    lines = problems(f'[[subscribers]]\nemail = "ada@example.org"\n{interests}\n', tmp_path)
    assert len(lines) == 1
    assert "ada@example.org" in lines[0] and expected in lines[0]


def test_header_injection_in_config_is_refused(tmp_path: Path) -> None:
    text = '[[subscribers]]\nemail = "ada@example.org"\nname = "Ada\\r\\nBcc: eve@example.org"\n'
    assert "one line" in problems(text, tmp_path)[0]


def test_sources_need_exactly_one_location(tmp_path: Path) -> None:
    line = problems('[[sources]]\nkind = "page"\n', tmp_path)[0]
    assert "exactly one of path" in line
    line = problems('[[sources]]\nkind = "page"\nurl = "ftp://x"\n', tmp_path)[0]
    assert "http" in line


def test_smtp_method_needs_a_server(tmp_path: Path) -> None:
    assert "[delivery.smtp]" in problems('[delivery]\nmethod = "smtp"\n', tmp_path)[0]


def test_duplicate_subscribers_are_refused(tmp_path: Path) -> None:
    text = '[[subscribers]]\nemail = "a@example.org"\n[[subscribers]]\nemail = "A@example.org"\n'
    assert "listed twice" in problems(text, tmp_path)[0]


def test_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    config = parse_config('[digest]\nstore = "state/d.db"\n', tmp_path / "sub" / "digest.toml")
    assert config.store_path == (tmp_path / "sub" / "state" / "d.db").resolve()
    assert config.resolve("/abs/x") == Path("/abs/x")
    assert config.resolve("bundled:samples") == bundled_path("samples")
    assert sorted(p.suffix for p in bundled_path("samples").iterdir())[0] == ".json"


def test_config_path_precedence(tmp_path: Path) -> None:
    # made absolute once: every message names the one file meant
    assert find_config_path("a.toml", {"DIGEST_CONFIG": "b.toml"}) == Path("a.toml").absolute()
    assert find_config_path(None, {"DIGEST_CONFIG": "b.toml"}) == Path("b.toml").absolute()
    assert find_config_path(None, {}) == Path("digest.toml").absolute()
    assert find_config_path(str(tmp_path / "c.toml")) == tmp_path / "c.toml"


def _models(annotation: object) -> list[type[BaseModel]]:
    """The models in an annotation: a union's members, a tuple's items, Annotated's type."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()):
        found += _models(arg)
    return found


def _keys(model: type[BaseModel], prefix: str) -> set[str]:
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        key = field.alias or name
        entries = [
            a for a in getattr(field.annotation, "__args__", ()) if dataclasses.is_dataclass(a)
        ]
        if entries:  # [[subscribers]]: a tuple of dataclass entries
            keys |= {f"{prefix}{key}.{f.name}" for f in dataclasses.fields(entries[0])}
            continue
        nested = _models(field.annotation)
        for inner in nested:  # every source kind's keys, every channel's table
            keys |= _keys(inner, f"{prefix}{key}.")
        if not nested:
            keys.add(f"{prefix}{key}")
    return keys


def test_every_config_key_is_documented_in_the_example() -> None:
    documented: set[str] = set()
    table = ""
    for line in EXAMPLE.read_text().splitlines():
        header = re.match(r"^#?\s*\[\[?([\w.]+)\]\]?", line)
        if header:
            table = header.group(1) + "."
            continue
        key = re.match(r"^#?\s*([a-z_]+)\s*=", line)
        if key:
            documented.add(table + key.group(1))
    assert _keys(config_schema(), "") - documented == set()


def test_example_parses_as_plain_toml() -> None:
    data = tomllib.loads(EXAMPLE.read_text())
    assert set(data) == {"digest", "schedule", "fetch", "sources", "delivery", "subscribers"}


def test_a_thousand_duplicates_among_many_subscribers_are_named_from_one_scan(
    tmp_path: Path,
) -> None:
    from digest.config_errors import _line_index

    entries = [f'[[subscribers]]\nemail = "r{n}@example.org"\n' for n in range(20_000)]
    entries += [f'[[subscribers]]\nemail = "r{n}@example.org"\n' for n in range(1_000)]
    text = "".join(entries)
    before = _line_index.cache_info().misses
    with pytest.raises(ConfigError) as caught:
        parse_config(text, tmp_path / "digest.toml")
    lines = str(caught.value).splitlines()
    assert len(lines) == 1_000
    assert lines[0].endswith("subscribers[20000].email: r0@example.org is listed twice; merge "
                             "the two entries")  # fmt: skip
    assert f"digest.toml:{2 * 20_000 + 2}:" in lines[0]
    assert _line_index.cache_info().misses - before == 1  # not one scan of the file per error
