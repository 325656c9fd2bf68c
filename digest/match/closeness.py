"""How close a paper is to an interest, on one scale for every kind of interest: its cosine
judged against the cosines of the other recent papers, not as an absolute number.

An average of token vectors scores a long sentence lower than a two-word phrase, and two papers'
texts closer to each other than any description is to either, so one cosine threshold means a
different thing for each interest (a sentence's relevant papers sit at 0.25-0.32, a phrase's at
0.45-0.6). Instead, for an interest ``t``::

    z(paper) = (cos(t, paper) - mean cos(t, r)) / spread cos(t, r)        share = Phi(z)

over a reference collection ``r``: the most recent papers whose vectors the store keeps
(:data:`REFERENCE_LIMIT`, the day's papers among them), topped up with the bundled sample papers
while there are fewer than :data:`REFERENCE_ENOUGH` (a first run, a preview; their vectors are
kept in the store too). A liked paper and the papers are compared less the collection's mean
vector: papers of one field are close in what all papers share. The mean and spread of every
interest at once come from the collection's mean vector and covariance, so the collection is
read once per run however many interests there are. ``share`` estimates the part of recent
papers the paper is closer than (a normal approximation, smooth on a day of a dozen papers);
``min_similarity`` is such a share, default :data:`DEFAULT_MIN_SIMILARITY` (z >= 1.96, about
the closest 2.5 %), for a phrase, a sentence and a liked paper alike.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

from digest.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from digest.models import Paper

    Vectors = npt.NDArray[np.float32]

# Calibrated on bench/relevance.py with the bundled text pages alone as the collection (papers
# the judged set does not hold): a phrase and a sentence each reach about 0.5-0.65 precision
# and 0.6-0.7 recall there, where the old cosine threshold left sentences at 0.33 recall.
DEFAULT_MIN_SIMILARITY = 0.975
REFERENCE_LIMIT = 2000  # recent papers standing for "the collection"
REFERENCE_ENOUGH = 200  # below this, the bundled sample papers join the collection
EVIDENCE_SPAN = 3.0  # standard scores above the threshold at which meaning evidence reaches 1
_SPREAD_FLOOR = 1e-3  # a collection of near-identical papers still divides by something
_NORMAL = NormalDist()


def threshold_of(min_similarity: float) -> float:
    """The standard score a paper needs for closeness ``min_similarity`` (a share, 0-1)."""
    return _NORMAL.inv_cdf(min_similarity)


def share_of(z: float) -> float:
    """The part of recent papers a paper ``z`` standard scores out is closer than."""
    return _NORMAL.cdf(z)


def evidence_of(z: float, threshold: float) -> float:
    """Meaning evidence for ranking, 0.5 at the threshold rising to 1 ``EVIDENCE_SPAN`` above."""
    return 0.5 + 0.5 * min(1.0, (z - threshold) / EVIDENCE_SPAN)


def top_share(share: float) -> str:
    """A share of recent papers as a reader reads it: 0.975 is "top 2.5%", 0.9999 and closer
    "top 0.01%"."""
    return f"top {max((1.0 - share) * 100, 0.01):.2g}%"


@dataclass(frozen=True)
class Reference:
    """The collection a paper's closeness is judged against: its mean and covariance, and the
    same collection with what all its papers share taken out (``shared``)."""

    mean: Vectors
    covariance: Vectors
    shared: Reference | None = None

    @classmethod
    def of(cls, vectors: Vectors, *, with_shared: bool = True) -> Reference:
        import numpy as np

        if len(vectors) < 2:
            raise ConfigError(
                "closeness in meaning needs at least two papers to compare with",
                hint="reinstall paper-digest: its bundled sample papers are missing",
            )
        rows = vectors.astype(np.float64)
        mean = rows.mean(axis=0)
        centred = rows - mean
        covariance = centred.T @ centred / len(rows)
        shared = cls.of(unit(centred), with_shared=False) if with_shared else None
        return cls(mean.astype(np.float32), covariance.astype(np.float32), shared)

    def scale(self, interests: Vectors) -> tuple[Vectors, Vectors]:
        """Each interest's mean cosine over the collection and its spread (one row each)."""
        import numpy as np

        means = interests @ self.mean
        spread = np.sqrt(np.maximum(((interests @ self.covariance) * interests).sum(axis=1), 0))
        return means, np.maximum(spread, _SPREAD_FLOOR).astype(np.float32)

    def without_shared(self, vectors: Vectors) -> Vectors:
        """``vectors`` less the collection's mean, unit length again: two papers of a field are
        close in what every paper has (its genre, its words), and a liked paper is compared
        with the others after that is taken out."""
        return unit(vectors - self.mean)


def unit(vectors: Vectors) -> Vectors:
    """Each row scaled to unit length (a zero row stays zero)."""
    import numpy as np

    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    scaled: Vectors = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return scaled


SAMPLE_PREFIX = "sample:"  # the store keeps the bundled papers' vectors under these keys


def collection_rows(
    day: Vectors, day_keys: Sequence[str], recent: Sequence[tuple[str, bytes]]
) -> dict[str, Vectors]:
    """The collection by paper key: the store's ``recent`` (key, float32 bytes) vectors and the
    day's, each paper once."""
    import numpy as np

    rows: dict[str, Vectors] = {key: np.frombuffer(raw, dtype="<f4") for key, raw in recent}
    for key, vector in zip(day_keys, day, strict=True):
        rows.setdefault(key, vector)
    return rows


@functools.cache
def sample_papers() -> tuple[Paper, ...]:
    """The bundled sample papers (about 250, of 2024-2026), each keyed ``sample:<key>`` so that
    their vectors, kept in the store, are never taken for a paper of a day."""
    import datetime as dt

    from digest.config import bundled_path
    from digest.sources.sniff import parse_document

    found: dict[str, Paper] = {}
    for path in sorted(bundled_path("samples").glob("*")):
        if path.suffix in (".json", ".txt"):
            papers = parse_document(path.read_bytes(), origin=path.name, today=dt.date(2026, 8, 1))
            for paper in papers:
                key = SAMPLE_PREFIX + paper.key
                found.setdefault(key, paper.model_copy(update={"key": key}))
    return tuple(found.values())
