"""How much one source may hand over: bytes, entries, JSON nesting (``[fetch]`` in the config).

A source is untrusted input; without limits one hostile or broken response could take the run's
memory or time. The defaults sit far above any real Daily Papers day (the largest sample is
162 KB and 30 entries) and each one has a config key, named in the error that reports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from digest.errors import ParseError


@dataclass(frozen=True)
class Limits:
    """The limits of one run's sources."""

    max_bytes: int = 8_000_000
    max_entries: int = 10_000
    max_json_depth: int = 64


DEFAULT_LIMITS = Limits()


def check_entries(entries: list[Any], limits: Limits, origin: str) -> None:
    """ParseError when a source holds more entries than ``limits`` allow."""
    if len(entries) > limits.max_entries:
        raise ParseError(
            f"{len(entries):,} entries, more than the limit of {limits.max_entries:,}",
            where=origin,
            hint="raise [fetch] max_entries if this source really holds that many papers",
        )


def check_depth(data: Any, limits: Limits, origin: str) -> None:
    """ParseError when JSON ``data`` nests deeper than ``limits`` allow (checked iteratively)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limits.max_json_depth:
            raise ParseError(
                f"the JSON nests deeper than {limits.max_json_depth} levels",
                where=origin,
                hint="this is not an API response; raise [fetch] max_json_depth only if it is",
            )
        if isinstance(value, dict):
            stack.extend(
                (item, depth + 1) for item in value.values() if isinstance(item, dict | list)
            )
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value if isinstance(item, dict | list))
