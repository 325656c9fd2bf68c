"""Precision and recall of interests in plain words (`about`), of keywords, of both, and of the
same interests written as a reader's sentence, on the hand-judged relevance set
bench/relevance.toml (the 77 papers of the four real API samples).

    python bench/relevance.py [--min-similarity 0.975] [--held-out] [--feedback]

Prints one line per interest and kind of rule, and the means over the interests. ``--held-out``
adds leave-one-interest-out figures: each interest matched at the threshold calibrated on the
others, since the default was calibrated on this same set. ``--feedback`` simulates readers over
the sample days through a real SQLite store: each reader's digests of the first days (cold
start), a verdict on every paper shown ("more" when judged relevant, else "fewer"), then what
their profile picks on the later days, against the same days at cold start. Needs the
semantic extra (pip install -e '.[semantic]'); runs offline.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest.match import compile_interests  # noqa: E402
from digest.match.closeness import DEFAULT_MIN_SIMILARITY as DEFAULT  # noqa: E402
from digest.models import Paper, Subscriber  # noqa: E402
from digest.sources.sniff import parse_document  # noqa: E402

SET = Path(__file__).resolve().parent / "relevance.toml"
SAMPLES = ROOT / "tests" / "fixtures" / "samples" / "hf"
KINDS = ("about", "keywords", "both", "sentence")


@dataclass(frozen=True)
class Row:
    """One interest and kind of rule: what it picked against what was judged."""

    interest: str
    kind: str
    picked: frozenset[str]
    judged: frozenset[str]

    @property
    def precision(self) -> float:
        return len(self.picked & self.judged) / len(self.picked) if self.picked else 1.0

    @property
    def recall(self) -> float:
        return len(self.picked & self.judged) / len(self.judged)


def sample_papers() -> list[Paper]:
    """The distinct papers of the API samples."""
    found: dict[str, Paper] = {}
    for path in sorted(SAMPLES.glob("api_*.json")):
        for paper in parse_document(path.read_bytes(), origin=path.name, today=dt.date(2026, 8, 1)):
            found.setdefault(paper.key, paper)
    return list(found.values())


def evaluate(min_similarity: float | None = None) -> list[Row]:
    """Every interest of the set, matched with `about` alone, keywords alone, and both."""
    interests: list[dict[str, Any]] = tomllib.loads(SET.read_text(encoding="utf-8"))["interests"]
    papers = sample_papers()
    subscribers = []
    for n, interest in enumerate(interests):
        for kind in KINDS:
            rules: dict[str, Any] = {"max_papers": 500, "min_similarity": min_similarity}
            if kind == "sentence":
                rules["about"] = (interest["sentence"],)
            if kind in ("about", "both"):
                rules["about"] = tuple(interest["about"])
            if kind in ("keywords", "both"):
                rules["keywords"] = tuple(interest["keywords"])
            subscribers.append(Subscriber(email=f"{kind}-{n}@example.org", **rules))
    ranked = compile_interests(subscribers).rank(papers)
    rows = []
    for n, interest in enumerate(interests):
        judged = frozenset(interest["papers"])
        for kind in KINDS:
            matches = ranked[f"{kind}-{n}@example.org"].matches
            picked = frozenset(m.paper.arxiv_id for m in matches if m.paper.arxiv_id)
            rows.append(Row(interest["name"], kind, picked, judged))
    return rows


def mean(rows: list[Row], kind: str) -> tuple[float, float]:
    chosen = [row for row in rows if row.kind == kind]
    return (
        sum(row.precision for row in chosen) / len(chosen),
        sum(row.recall for row in chosen) / len(chosen),
    )


def held_out(grid: list[float]) -> list[tuple[Row, float]]:
    """Each interest's `about` row at the threshold the other interests would have chosen (the
    best mean F1 over them on ``grid``): how the calibration does on an interest it never saw."""
    table = {t: {row.interest: row for row in evaluate(t) if row.kind == "about"} for t in grid}
    interests = list(table[grid[0]])

    def f1(row: Row) -> float:
        p, r = row.precision, row.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    out = []
    for interest in interests:
        others = [i for i in interests if i != interest]
        chosen = max(grid, key=lambda t: (sum(f1(table[t][i]) for i in others), -abs(t - DEFAULT)))
        out.append((table[chosen][interest], chosen))
    return out


def day_papers() -> list[list[Paper]]:
    """The papers of each API sample, oldest day first (each paper on the first day it is in)."""
    seen: set[str] = set()
    days = []
    for path in sorted(SAMPLES.glob("api_*.json")):
        papers = parse_document(path.read_bytes(), origin=path.name, today=dt.date(2026, 8, 1))
        fresh = [p for p in dict((p.key, p) for p in papers).values() if p.key not in seen]
        seen.update(p.key for p in fresh)
        days.append(fresh)
    return days


def simulate(train_days: int) -> list[tuple[Row, Row, int]]:
    """Per interest and kind of rule: the cold-start row and the after-feedback row on the days
    after ``train_days``, and how many verdicts the reader gave."""
    import tempfile

    from digest.store import open_store

    interests: list[dict[str, Any]] = tomllib.loads(SET.read_text(encoding="utf-8"))["interests"]
    days = day_papers()
    train, test = days[:train_days], [p for day in days[train_days:] for p in day]
    out = []
    for n, interest in enumerate(interests):
        judged = frozenset(interest["papers"])
        for kind in ("about", "keywords"):
            rules: dict[str, Any] = {kind: tuple(interest[kind])}
            reader = Subscriber(email=f"{kind}-{n}@example.org", **rules)
            wide = Subscriber(email=reader.email, max_papers=100, **rules)
            with (
                tempfile.TemporaryDirectory() as folder,
                open_store(str(Path(folder) / "digest.db"), base_dir=Path(folder)) as store,
            ):
                now = dt.datetime(2026, 8, 1, 7, tzinfo=dt.UTC)
                verdicts = 0
                for papers in train:
                    store.observe(papers, now, record=True)
                    matcher = compile_interests([reader], store=store, feedback=store)
                    for match in matcher.rank(papers)[reader.email].matches:
                        good = match.paper.arxiv_id in judged
                        store.record_verdict(reader.email, match.paper.key, 1 if good else -1, now)
                        verdicts += 1
                    now += dt.timedelta(days=1)
                store.observe(test, now, record=True)
                cold = compile_interests([wide], store=store).rank(test)[reader.email]
                after = compile_interests([wide], store=store, feedback=store).rank(test)
            rows = []
            for ranking in (cold, after[reader.email]):
                picked = frozenset(m.paper.arxiv_id for m in ranking.matches if m.paper.arxiv_id)
                rows.append(
                    Row(interest["name"], kind, picked, judged & {p.arxiv_id for p in test})
                )
            out.append((rows[0], rows[1], verdicts))
    return out


def print_feedback(train_days: int) -> None:
    results = simulate(train_days)
    print(
        f"\nFeedback: verdicts on every paper shown on the first {train_days} sample days, "
        "then the later days"
    )
    print(f"{'interest':<48} {'rules':<9} {'verdicts':>8}  {'cold P':>6} {'cold R':>6}  "
          f"{'after P':>7} {'after R':>7}")  # fmt: skip
    for cold, after, verdicts in results:
        if not cold.judged:
            continue
        print(
            f"{cold.interest:<48} {cold.kind:<9} {verdicts:>8}  {cold.precision:>6.0%} "
            f"{cold.recall:>6.0%}  {after.precision:>7.0%} {after.recall:>7.0%}"
        )
    for kind in ("about", "keywords"):
        chosen = [(c, a) for c, a, _ in results if c.kind == kind and c.judged]
        cold_p = sum(c.precision for c, _ in chosen) / len(chosen)
        cold_r = sum(c.recall for c, _ in chosen) / len(chosen)
        after_p = sum(a.precision for _, a in chosen) / len(chosen)
        after_r = sum(a.recall for _, a in chosen) / len(chosen)
        print(
            f"{'mean over the interests':<48} {kind:<9} {'':>8}  {cold_p:>6.0%} {cold_r:>6.0%}  "
            f"{after_p:>7.0%} {after_r:>7.0%}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-similarity", type=float, default=None)
    parser.add_argument(
        "--held-out", action="store_true", help="also calibrate without each interest in turn"
    )
    parser.add_argument(
        "--feedback", action="store_true", help="also simulate readers' verdicts over the days"
    )
    parser.add_argument("--train-days", type=int, default=2, help="days of verdicts (default 2)")
    args = parser.parse_args()
    rows = evaluate(args.min_similarity)
    print(f"{'interest':<48} {'rules':<9} {'precision':>9} {'recall':>6}  picked/judged")
    for row in rows:
        print(
            f"{row.interest:<48} {row.kind:<9} {row.precision:>9.0%} {row.recall:>6.0%}  "
            f"{len(row.picked)}/{len(row.judged)}"
        )
    for kind in KINDS:
        precision, recall = mean(rows, kind)
        print(f"{'mean over the interests':<48} {kind:<9} {precision:>9.0%} {recall:>6.0%}")
    if args.held_out:
        print("\n`about` alone, min_similarity calibrated on the other interests (best mean F1):")
        rows_at = held_out([round(0.95 + 0.0025 * n, 4) for n in range(19)])
        for row, threshold in rows_at:
            print(
                f"{row.interest:<48} {threshold:<9} {row.precision:>9.0%} {row.recall:>6.0%}  "
                f"{len(row.picked)}/{len(row.judged)}"
            )
        precision, recall = mean([row for row, _ in rows_at], "about")
        label = "mean over the interests (held out)"
        print(f"{label:<48} {'about':<9} {precision:>9.0%} {recall:>6.0%}")
    if args.feedback:
        print_feedback(args.train_days)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
