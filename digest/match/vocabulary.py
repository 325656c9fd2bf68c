"""Every subscriber's terms and names in one vocabulary, and scanning a paper's words for them.

Each distinct term (keyword, ``require``, ``exclude``) and name (author, organisation) gets an id;
:meth:`Vocabulary.scan` looks every n-gram of a tokenised paper up once and reports which ids it
contains, in which field and where, so matching many subscribers is then set arithmetic on ids.
"""

from __future__ import annotations

from dataclasses import dataclass

from digest.match.text import PaperText, TextField
from digest.terms import fold, name_words, variants
from digest.terms import words as words_of


@dataclass(slots=True)
class Found:
    """What one scan of one paper found: term and name ids, where the text terms occur."""

    present: set[int]
    title: set[int]
    occurrences: dict[int, list[tuple[int, int, int]]]  # id -> (field rank, start, end)
    first: dict[int, tuple[int, int]]


class Vocabulary:
    """Every term and name of every subscriber, each with an id, and the lookup tables to scan."""

    def __init__(self) -> None:
        self.size = 0
        self._terms: dict[tuple[str, ...], int] = {}
        self._raw_terms: dict[str, int | None] = {}
        self._raw_names: dict[tuple[str, str], int] = {}
        self._exact1: dict[str, list[int]] = {}
        self._exact: dict[tuple[str, ...], list[int]] = {}
        self._starts: set[str] = set()
        self._lengths: list[int] = []
        self._prefix1: dict[str, list[int]] = {}
        self._stem_lengths1: list[int] = []
        self._head1 = 3
        self._heads1: set[str] = set()
        self._prefixes: dict[tuple[tuple[str, ...], str], list[int]] = {}
        self._prefix_starts: set[str] = set()
        self._prefix_shapes: list[tuple[int, int]] = []
        self._names: dict[str, dict[tuple[str, ...], int]] = {"author": {}, "organization": {}}
        self._name_lengths: dict[str, list[int]] = {"author": [], "organization": []}

    def term(self, raw: str) -> int | None:
        """The id of a keyword/require/exclude term, registered on first sight; None if wordless."""
        if raw in self._raw_terms:
            return self._raw_terms[raw]
        tid = self._raw_terms[raw] = self._register(raw)
        return tid

    def _register(self, raw: str) -> int | None:
        is_prefix = raw.strip().endswith("*")
        words = words_of(raw.strip().rstrip("*"))
        if not words:
            return None
        identity = (
            ("*" if is_prefix else "="),
            *(fold(w) for w in words[:-1]),
            words[-1] if is_prefix else fold(words[-1]),
        )
        tid = self._terms.get(identity)
        if tid is None:
            tid = self._terms[identity] = self._new_id()
        lead = words[:-1] if is_prefix else words
        combos: list[tuple[str, ...]] = [()]
        for word in lead:
            combos = [(*c, v) for c in combos for v in sorted(variants(word))]
        for combo in combos:
            if is_prefix:
                self._add_prefix(combo, words[-1], tid)
            else:
                self._add_exact(combo, tid)
        return tid

    def name(self, kind: str, raw: str) -> int | None:
        """The id of an author or organisation interest; None if wordless."""
        if (kind, raw) in self._raw_names:
            return self._raw_names[(kind, raw)]
        words = tuple(name_words(raw) if kind == "organization" else words_of(raw))
        if not words:
            return None
        table = self._names[kind]
        nid = table.get(words)
        if nid is None:
            nid = table[words] = self._new_id()
            lengths = self._name_lengths[kind]
            if len(words) not in lengths:
                lengths.append(len(words))
        self._raw_names[(kind, raw)] = nid
        return nid

    def _new_id(self) -> int:
        self.size += 1
        return self.size - 1

    def _add_exact(self, combo: tuple[str, ...], tid: int) -> None:
        if len(combo) == 1:
            ids = self._exact1.setdefault(combo[0], [])
        else:
            ids = self._exact.setdefault(combo, [])
            self._starts.add(combo[0])
            if len(combo) not in self._lengths:
                self._lengths.append(len(combo))
                self._lengths.sort()
        if tid not in ids:
            ids.append(tid)

    def _add_prefix(self, lead: tuple[str, ...], stem: str, tid: int) -> None:
        if lead:
            ids = self._prefixes.setdefault((lead, stem), [])
            self._prefix_starts.add(lead[0])
            shape = (len(lead), len(stem))
            if shape not in self._prefix_shapes:
                self._prefix_shapes.append(shape)
        else:
            ids = self._prefix1.setdefault(stem, [])
            if len(stem) not in self._stem_lengths1:
                self._stem_lengths1.append(len(stem))
                self._stem_lengths1.sort()
            # Cheap first test of a word against all one-word prefixes: their common head length.
            if len(stem) < self._head1:
                self._head1 = len(stem)
                self._heads1 = {s[: self._head1] for s in self._prefix1}
            else:
                self._heads1.add(stem[: self._head1])
        if tid not in ids:
            ids.append(tid)

    def scan(self, text: PaperText) -> Found:
        """Every term and name of the vocabulary that ``text`` contains, and where."""
        found = Found(set(), set(), {}, {})
        for field in text.fields:
            self._scan_field(field, found)
        for kind, words_list in (("author", text.authors), ("organization", text.organizations)):
            table = self._names[kind]
            if not table:
                continue
            lengths = self._name_lengths[kind]
            for words in words_list:
                for p in range(len(words)):
                    for n in lengths:
                        nid = table.get(words[p : p + n]) if p + n <= len(words) else None
                        if nid is not None:
                            found.present.add(nid)
        return found

    def _scan_field(self, field: TextField, found: Found) -> None:
        keys, plains, n = field.keys, field.plains, len(field.keys)
        exact1, exact, starts, lengths = self._exact1, self._exact, self._starts, self._lengths
        prefix1, heads1, head1 = self._prefix1, self._heads1, self._head1
        for p in range(n):
            key = keys[p]
            ids = exact1.get(key)
            if ids:
                self._hit(field, found, ids, p, p)
            if key in starts:
                for length in lengths:
                    if p + length > n:
                        break
                    ids = exact.get(keys[p : p + length])
                    if ids and field.phrase(p, p + length - 1):
                        self._hit(field, found, ids, p, p + length - 1)
            if prefix1:
                word = plains[p]
                if word[:head1] in heads1:
                    for length in self._stem_lengths1:
                        if length > len(word):
                            break
                        ids = prefix1.get(word[:length])
                        if ids:
                            self._hit(field, found, ids, p, p)
            if key in self._prefix_starts:
                for lead, length in self._prefix_shapes:
                    if p + lead < n and len(plains[p + lead]) >= length:
                        ids = self._prefixes.get((keys[p : p + lead], plains[p + lead][:length]))
                        if ids and field.phrase(p, p + lead):
                            self._hit(field, found, ids, p, p + lead)

    @staticmethod
    def _hit(field: TextField, found: Found, ids: list[int], first: int, last: int) -> None:
        where = (field.rank, field.starts[first])
        for tid in ids:
            found.present.add(tid)
            if field.rank == 0:
                found.title.add(tid)
            if tid not in found.first or where < found.first[tid]:
                found.first[tid] = where
            if field.name is not None:
                found.occurrences.setdefault(tid, []).append(
                    (field.rank, field.starts[first], field.ends[last])
                )
