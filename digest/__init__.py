"""paper-digest: a daily email digest of new research papers, matched to each subscriber."""

__version__ = "0.1.0"
