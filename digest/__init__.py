"""paper-digest: a daily email digest of new research papers, matched to each subscriber.

The public API is what ``__all__`` names (``tests/test_public_api.py`` keeps a snapshot of it);
everything else is implementation and may move. Names load on first use, so ``import digest``
(and ``digest --help``) stays light::

    from digest import Digest, load_config

    report = Digest(load_config("digest.toml")).run(dry_run=True)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_PUBLIC = {
    "Digest": "digest.app",
    "Config": "digest.config",
    "load_config": "digest.config",
    "parse_config": "digest.config",
    "Paper": "digest.models",
    "Subscriber": "digest.models",
    "Match": "digest.models",
    "Batch": "digest.models",
    "Rendered": "digest.models",
    "RunReport": "digest.report",
    "DigestError": "digest.errors",
    "ConfigError": "digest.errors",
    "SourceError": "digest.errors",
    "DeliveryError": "digest.errors",
    "StoreError": "digest.errors",
    "Registry": "digest.registry",
}
__all__ = [
    "Batch",
    "Config",
    "ConfigError",
    "DeliveryError",
    "Digest",
    "DigestError",
    "Match",
    "Paper",
    "Registry",
    "Rendered",
    "RunReport",
    "SourceError",
    "StoreError",
    "Subscriber",
    "__version__",
    "load_config",
    "parse_config",
]

if TYPE_CHECKING:
    from digest.app import Digest
    from digest.config import Config, load_config, parse_config
    from digest.errors import ConfigError, DeliveryError, DigestError, SourceError, StoreError
    from digest.models import Batch, Match, Paper, Rendered, Subscriber
    from digest.registry import Registry
    from digest.report import RunReport


def __getattr__(name: str) -> Any:
    """A public name, imported when first asked for."""
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'digest' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
