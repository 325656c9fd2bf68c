"""How interests are written and compared: words, case and accents, plurals, prefixes.

Text is cut into words (runs of letters and digits, with combining accents kept inside their
word); words compare case- and accent-insensitively (:func:`plain`) and simple English plurals
fold both ways (:func:`fold`, :func:`variants`). The config checks (a term both wanted and
excluded) and the keyword matcher use these same rules, so they can never disagree.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# Words are runs of letters and digits; combining accents stay inside the word they decorate so
# decomposed text ("e" + U+0301) is not cut in two.
WORD = re.compile(r"(?:[^\W_]|[\u0300-\u036f])+")
# What may separate the words of a phrase: "mixture-of-experts", a line break; not ". " or "''".
JOINERS = " \t\r\n\u00a0-\u2010\u2011\u2012\u2013\u2014/"


def plain(word: str) -> str:
    """``word`` case-folded and stripped of accents: how words and prefixes are compared."""
    folded = word.casefold()
    if folded.isascii():
        return folded
    decomposed = unicodedata.normalize("NFKD", folded)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def fold(word: str) -> str:
    """A plain word with a simple English plural ending removed: the form text is indexed under.

    Deliberately crude ("queries" -> "query", "agents" -> "agent", "boxes" -> "boxe"): keywords
    are registered under the folds of both their singular and plural forms, so a crude but
    consistent fold of the text is all that is needed.
    """
    if len(word) <= 3 or word[-1] != "s" or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    return word[:-1]


def variants(word: str) -> frozenset[str]:
    """Every folded form under which text may spell ``word`` (singular or plural)."""
    forms = {word}
    if len(word) > 1 and word[-1] == "y" and word[-2] not in "aeiou":
        forms.add(word[:-1] + "ies")
    forms.add(word + ("es" if word.endswith(("s", "x", "z", "ch", "sh")) else "s"))
    if fold(word) != word:
        forms.add(word[:-1])
        if word.endswith("es"):
            forms.add(word[:-2])
        if word.endswith("ies"):
            forms.add(word[:-3] + "y")
    return frozenset(fold(form) for form in forms)


def words(term: str) -> list[str]:
    """The plain words of ``term``."""
    return [plain(w) for w in WORD.findall(term)]


# Where a name written as one word starts a new one: "GoogleDeepMind", "NVIDIAResearch", "Meta AI".
CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def name_words(name: str) -> list[str]:
    """The plain words of an organisation's name, a word written in CamelCase cut at each capital
    ("GoogleDeepMind": google, deep, mind), so "Google" matches it and "Googler" does not."""
    return [plain(part) for w in WORD.findall(name) for part in CAMEL.split(w) if part]


@functools.lru_cache(maxsize=65_536)
def term_key(term: str) -> str:
    """What makes two written terms the same interest ("Agents*" and "agent" are)."""
    return " ".join(fold(w) for w in words(term.strip().rstrip("*")))
