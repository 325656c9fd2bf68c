"""CSS inlining with premailer, paid once per distinct markup *shape*, not once per email.

Inlining depends only on the tags, classes and structure of the HTML, not on its text or URLs.
So :class:`Inliner` replaces every text run and every content attribute (``href``, ``alt``, ...)
with a numbered placeholder, inlines that *skeleton* once, caches it, and pours the original
(already escaped) strings back in. A highlight (``<mark>``, which every reader's keywords place
differently) stays inside its text run, so highlights make no new shapes: the run's bare
``<mark>`` tags take the stylesheet's one inlined ``<mark>`` tag as it is poured back (when
its rules select on more than an element's own tag, classes and id, highlights are shapes).
A skeleton is inlined by the stylesheet resolved once per run (:mod:`.css_rules`: premailer's
own result, without premailer's per-document selector matching), or by a whole premailer pass
when the stylesheet selects on more than an element's own tag, classes and id.

The trade: a stylesheet must not select on text or on the placeholdered attributes (no
``a[href^=...]``, no ``:empty``); fragments (:meth:`Inliner.fragment`) are inlined on their own,
so their rules must not depend on ancestors outside the fragment. Any doubt (a placeholder lost
or duplicated by the parser) falls back to a plain premailer pass over the real HTML.
"""

from __future__ import annotations

import functools
import re
from collections import OrderedDict
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from digest.render.css_rules import LocalStylesheet

# Attributes whose values can steer CSS or that premailer itself reads or writes; every other
# attribute value (href, alt, title, ...) is content and becomes a placeholder.
_STYLE_ATTRIBUTES = frozenset(
    {
        "class", "id", "style", "width", "height", "align", "valign", "bgcolor", "border",
        "cellpadding", "cellspacing", "role", "lang", "dir", "name", "http-equiv", "charset",
        "type", "media",
    }
)  # fmt: skip
# A comment, a whole style or script element, a doctype, a tag (captured, so split() gives text
# and tokens in turn). The element's content is matched unrolled ("any run without '<', or a
# '<' that does not close it") rather than as a lazy ".*?": 2-3 times faster over a stylesheet.
_TOKENS = re.compile(
    r"(<(?:!--.*?-->|style\b[^>]*>[^<]*(?:<(?!/style\s*>)[^<]*)*</style\s*>"
    r"|script\b[^>]*>[^<]*(?:<(?!/script\s*>)[^<]*)*</script\s*>|![^>]*>|/?[A-Za-z][^>]*>))",
    re.S | re.I,
)
_ATTRIBUTE = re.compile(r"""([^\s=/>"']+)(\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>"']+))?""")
_START_TAG = re.compile(r"<([A-Za-z][A-Za-z0-9-]*)(.*?)(/?)>\Z", re.S)
# Plain ASCII letters and digits: lxml percent-encodes anything else inside href/src.
_PLACEHOLDER = re.compile("DGPH([0-9]+)HPGD")
_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.S | re.I)
_V = TypeVar("_V")
# unrolled as in _TOKENS: ten times faster than a lazy ".*?" over a stylesheet
_STYLE_TEXT = re.compile(r"<style\b[^>]*>([^<]*(?:<(?!/style\s*>)[^<]*)*)</style\s*>", re.S | re.I)
# A highlight as highlight.py writes it (bare): it stays in the text run it sits in.
_MARK = "<mark>"
_MARK_TAG = re.compile(r"<mark\b[^>]*>")


def premailer_transform(html: str) -> str:
    """One whole premailer pass with the network off and cssutils' chatter silenced."""
    # imported on first use: commands that never inline skip premailer and cssutils
    from digest.render.css_rules import premailer_with_options

    return str(premailer_with_options().transform(html))


def skeleton(html: str, *, fold: bool = True) -> tuple[str, list[str]]:
    """``html`` with text runs (their highlights included, unless not ``fold``) and content
    attribute values replaced by placeholders."""
    # split() alternates text and tokens: the loop below is the cost of every email's layout
    parts = _TOKENS.split(html)
    if fold and _MARK in html and "<mark " not in html:
        parts = _highlights_in_runs(parts)
    values: list[str] = []
    out: list[str] = []
    append = out.append
    last = len(parts) - 1
    for index in range(0, len(parts), 2):
        text = parts[index]
        if text and not text.isspace():
            append(_placeholder(len(values)))
            values.append(text)
        else:
            append(text)
        if index == last:
            break
        tag = parts[index + 1]
        pieces, contents = _tag_parts(tag)
        if not contents:
            append(tag)
            continue
        for piece, content in zip(pieces, contents, strict=False):
            append(piece)
            append(_placeholder(len(values)))
            values.append(content)
        append(pieces[-1])
    return "".join(out), values


def _highlights_in_runs(parts: list[str]) -> list[str]:
    """``parts`` (text, tag, text, ...) with each bare ``<mark>...</mark>`` joined into the
    text around it."""
    merged = [parts[0]]
    open_marks = 0
    for index in range(1, len(parts), 2):
        tag = parts[index]
        if tag == _MARK or (tag == "</mark>" and open_marks):
            open_marks += 1 if tag == _MARK else -1
            merged[-1] += tag + parts[index + 1]
        else:
            merged += (tag, parts[index + 1])
    return merged


_PLACEHOLDERS = [f"DGPH{n}HPGD" for n in range(2048)]


def _placeholder(number: int) -> str:
    return _PLACEHOLDERS[number] if number < 2048 else f"DGPH{number}HPGD"


_TAG_PARTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
_NO_CONTENT: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())


def _tag_parts(tag: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The fixed pieces and content values of a start tag (:func:`_start_tag_parts`); none
    for comments, doctypes, end tags and whole style or script elements. The same tags recur
    in every email: each is worked out once."""
    found = _TAG_PARTS.get(tag)
    if found is None:
        found = _NO_CONTENT if tag[1] in "!/" or "</" in tag else _start_tag_parts(tag)
        if len(_TAG_PARTS) < 16_384:
            _TAG_PARTS[tag] = found
    return found


@functools.lru_cache(maxsize=16_384)
def _start_tag_parts(tag: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A start tag as fixed pieces around its content attribute values: the tag is
    ``pieces[0] + contents[0] + pieces[1] + ...`` with each value written as ``"value"``."""
    match = _START_TAG.match(tag)
    if match is None:
        return (tag,), ()
    name, attributes, self_closing = match.groups()
    pieces: list[str] = []
    contents: list[str] = []
    current = f"<{name}"
    position = 0
    for found in _ATTRIBUTE.finditer(attributes):
        current += attributes[position : found.start()]
        position = found.end()
        key, assignment = found.group(1), found.group(2)
        if assignment is None or key.lower() in _STYLE_ATTRIBUTES:
            current += found.group(0)
            continue
        raw = assignment.split("=", 1)[1].strip()
        if raw[:1] in "\"'":
            raw = raw[1:-1]
        pieces.append(f'{current}{key}="')
        contents.append(raw.replace(chr(34), "&#34;"))
        current = '"'
    pieces.append(f"{current}{attributes[position:]}{self_closing}>")
    return tuple(pieces), tuple(contents)


Slots = tuple[tuple[str, ...], tuple[int, ...]]
"""An inlined skeleton cut at its placeholders: the text between them, and their numbers."""


def slots(template: str, count: int) -> Slots | None:
    """``template`` cut at its placeholders, or None unless it holds each of ``0..count-1``
    exactly once (the parser lost or doubled one)."""
    parts = _PLACEHOLDER.split(template)
    order = tuple(int(index) for index in parts[1::2])
    if sorted(order) != list(range(count)):
        return None
    return tuple(parts[0::2]), order


def pour(pieces: Slots, values: list[str]) -> str:
    """The skeleton's text with ``values`` in their places."""
    texts, order = pieces
    out = [texts[0]]
    for index, text in zip(order, texts[1:], strict=True):
        out.append(values[index])
        out.append(text)
    return "".join(out)


class _Lru(Generic[_V]):
    """A small bounded mapping; the oldest entry goes first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.data: OrderedDict[str, _V] = OrderedDict()

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def get(self, key: str) -> _V | None:
        value = self.data.get(key)
        if value is not None:
            self.data.move_to_end(key)
        return value

    def put(self, key: str, value: _V) -> None:
        self.data[key] = value
        if len(self.data) > self.size:
            self.data.popitem(last=False)


class Inliner:
    """Inlines documents (cached by skeleton) and fragments (by exact HTML, then skeleton).

    ``stylesheet`` is the CSS applied to fragments (documents carry their own ``<style>``).
    """

    def __init__(self, stylesheet: str, *, cache_size: int = 4096) -> None:
        self._prefix = f"<!DOCTYPE html><html><head><style>{stylesheet}</style></head><body>"
        self._exact: _Lru[str] = _Lru(cache_size)
        self._shapes: _Lru[tuple[Slots, str] | None] = _Lru(cache_size)
        self._resolved: dict[tuple[str, ...], LocalStylesheet | None] = {}
        self._marks: dict[tuple[str, ...], str] = {}  # each resolved stylesheet's <mark>
        self._fold = True  # highlights stay in their text runs
        self.premailer_runs = 0  # whole premailer passes (a stylesheet it could not resolve)
        self.shapes_inlined = 0

    def document(self, html: str) -> str:
        """A whole HTML document with its ``<style>`` rules inlined (``@media`` rules kept)."""
        return self._inline(html)

    def fragment(self, html: str) -> str:
        """An HTML fragment (complete elements) with the stylesheet's rules inlined."""
        cached = self._exact.get(html)
        if cached is None:
            whole = self._inline(f"{self._prefix}{html}</body></html>")
            body = _BODY.search(whole)
            cached = body.group(1).strip("\n") if body else html
            self._exact.put(html, cached)
        return cached

    def _inline(self, html: str) -> str:
        shape, values = skeleton(html, fold=self._fold)
        # A shape is inlined and cut at its placeholders once; each email then pours its
        # values in (None: the parser lost a placeholder, so this shape is inlined whole).
        if shape in self._shapes:
            found = self._shapes.get(shape)
        else:
            mark = self._mark_of(shape)
            if mark is None:
                # A stylesheet whose <mark> depends on where it sits: highlights are shapes
                # of their own from now on.
                self._fold = False
                self._shapes = _Lru(self._shapes.size)
                return self._inline(html)
            pieces = slots(self._transform(shape), len(values))
            found = None if pieces is None else (pieces, mark)
            self._shapes.put(shape, found)
        if found is None:
            return self._transform(html)
        pieces, mark = found
        if mark != _MARK:
            values = [v.replace(_MARK, mark) if _MARK in v else v for v in values]
        return pour(pieces, values)

    def _mark_of(self, shape: str) -> str | None:
        """The tag a bare ``<mark>`` of ``shape``'s text runs becomes (itself when they are not
        folded into the runs); None when it depends on where it sits."""
        if not self._fold:
            return _MARK
        sheets = self._sheets(shape)
        return self._marks.get(sheets) if self._resolved[sheets] is not None else None

    def _sheets(self, html: str) -> tuple[str, ...]:
        """The stylesheets of ``html``, resolved once (and their inlined ``<mark>`` tag)."""
        from digest.render.css_rules import LocalStylesheet

        sheets = tuple(css.strip() for css in _STYLE_TEXT.findall(html))
        if sheets not in self._resolved:
            resolved = self._resolved[sheets] = LocalStylesheet.of(sheets)
            if resolved is not None:
                # Every rule selects on an element's own tag, classes and id: a bare <mark>
                # is inlined the same wherever it sits.
                styles = "".join(f"<style>{css}</style>" for css in sheets)
                probe = resolved.transform(
                    f"<html><head>{styles}</head><body><p>a{_MARK}b</mark></p></body></html>"
                )
                found = _MARK_TAG.search(probe or "")
                if found is not None:
                    self._marks[sheets] = found.group(0)
        return sheets

    def _transform(self, html: str) -> str:
        """``html`` inlined by its stylesheets resolved once, else by a whole premailer pass."""
        self.shapes_inlined += 1
        resolved = self._resolved[self._sheets(html)]
        inlined = resolved.transform(html) if resolved is not None else None
        if inlined is not None:
            return inlined
        self.premailer_runs += 1
        return premailer_transform(html)
