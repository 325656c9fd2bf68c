"""Helpers of the source tests: the local HTTP server (from ``tests/conftest.py``), a [fetch]."""

from __future__ import annotations

from typing import Any

from digest.config import FetchSection
from tests.conftest import LocalServer, Reply, Script

__all__ = ["LocalServer", "Reply", "Script", "fetch_section"]


def fetch_section(**settings: Any) -> FetchSection:
    """A ``[fetch]`` section from keyword settings (validated like the TOML file's)."""
    return FetchSection.model_validate(settings)
