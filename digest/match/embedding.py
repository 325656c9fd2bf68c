"""The bundled text-embedding model: wordllama's 256-dimension weights, loaded from its own wheel.

Nothing is downloaded: the weights (16 MB) and tokenizer ship inside the ``wordllama`` package
(the ``semantic`` extra) and are loaded with downloads disabled. A paper is embedded from its
title (twice: it is what the paper is about), AI summary, AI keywords and abstract; an interest
from the words the subscriber wrote that name its topic (:func:`interest_text`). Vectors are unit
length, so a dot product is the cosine.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from digest.errors import ConfigError
from digest.models import Paper

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Vectors = npt.NDArray[np.float32]

EXTRA_HINT = "install the semantic extra: pip install 'paper-digest[semantic]'"


def installed() -> bool:
    """Whether the bundled model can be loaded here (the semantic extra), without loading it."""
    import importlib.util

    return importlib.util.find_spec("wordllama") is not None


MODEL_NAME = "wordllama l2_supercat 256"

# Words that say nothing of a topic: English function words (not those that make a topic's
# phrase, as "few" of few shot or "out" of out of distribution), and how a reader words a request
# ("I want to follow research on ...", "papers about ..."). An embedding that averages its
# tokens, as wordllama's does, averages these in too, and they pull every sentence towards every
# other: without them a sentence lands where the same interest written as a phrase does.
_FILLER_WORDS = """
    a about am an and are as at be been being but by can could did do does for from had has have
    having he her hers him his how i i'd i'm if in into is it it's its itself me my myself of on
    or our ours she should so that the their theirs them these they this those to was we we're
    were what when where which who whom why will with would you your yours
    follow following interest interested interests keep like love paper papers research want
    wants"""
_FILLER = frozenset(_FILLER_WORDS.split())
# what may stand around a word in running text (quotes straight, curly and angled, brackets,
# sentence punctuation); inside a word ("C++", "2.5D", "GPT-4o", "Q&A") everything stays
_EDGES = ".,;:!?()[]{}\"'\u2018\u2019\u201c\u201d\u00ab\u00bb"


def topic_words(about: str) -> list[str]:
    """The words of an ``about`` text that name its topic: all but the filler."""
    words = []
    for token in about.split():
        word = token.strip(_EDGES)
        if word and word.casefold().replace("\u2019", "'") not in _FILLER:
            words.append(word)
    return words


def interest_text(about: str) -> str:
    """What an ``about`` text is embedded from: its topic's words (the text as written when it
    is all filler)."""
    words = topic_words(about)
    return " ".join(words) if words else " ".join(about.split())


class Embedder(Protocol):
    """Texts -> unit vectors (one row each); the name says which model made them."""

    name: str

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One unit-length float32 row per text."""


def paper_text(paper: Paper) -> str:
    """What a paper is embedded from."""
    parts = [paper.title, paper.title, paper.ai_summary or "", " ".join(paper.ai_keywords)]
    return ". ".join(part for part in [*parts, paper.abstract] if part)


class WordLlamaEmbedder:
    """wordllama's average-pooled token embeddings."""

    name = MODEL_NAME

    def __init__(self) -> None:
        try:
            import wordllama  # type: ignore[import-untyped]
        except ImportError as exc:
            raise ConfigError(
                "about/like interests need the bundled embedding model", hint=EXTRA_HINT
            ) from exc
        folder = Path(wordllama.__file__).parent
        try:
            self._model = wordllama.WordLlama.load(cache_dir=folder, disable_download=True)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"the bundled embedding model does not load: {exc}",
                where=str(folder),
                hint="reinstall the semantic extra: pip install --force-reinstall wordllama",
            ) from exc

    def embed(self, texts: Sequence[str]) -> Vectors:
        import numpy as np

        if not texts:
            return np.zeros((0, 256), dtype=np.float32)
        vectors: Vectors = self._model.embed(list(texts), norm=True).astype(np.float32)
        return vectors


@functools.cache
def bundled_embedder() -> WordLlamaEmbedder:
    """The one model of the process: loading it takes about half a second."""
    return WordLlamaEmbedder()
