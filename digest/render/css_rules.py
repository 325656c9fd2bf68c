"""A stylesheet resolved once per run: premailer's rules, merge and attributes, per element kind.

premailer matches every rule of the stylesheet against every document it inlines, with cssutils
and XPath: about 150 ms for a card. But when each inlined rule selects an element by its own tag,
classes and id alone (no combinator, attribute or structural selector: the bundled stylesheet is
written so), the style an element ends up with depends only on its tag and its ``class``, ``id``
and ``style`` attributes. :class:`LocalStylesheet` therefore asks premailer's own rule parser,
style merge and HTML-attribute step once per distinct element kind, and :meth:`~LocalStylesheet.
transform` replays the result on a document parsed and serialised by lxml exactly as premailer
parses and serialises it: the output is premailer's, byte for byte, at the cost of an lxml
round trip. ``tests/render/test_css_rules.py`` holds it to that on real days' emails.

:meth:`LocalStylesheet.of` answers None for a stylesheet that selects on anything else, and
:meth:`~LocalStylesheet.transform` for a document it cannot replay (a ``<style media=...>``, a
``data-premailer`` attribute, another stylesheet): premailer then runs whole.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence
from typing import Any

import cssutils
from lxml import etree
from lxml.cssselect import CSSSelector
from premailer import Premailer
from premailer.merge_style import csstext_to_pairs, merge_styles
from premailer.premailer import capitalize_float_margin, get_or_create_head

# A compound selector on the element itself: an optional tag, then classes and ids.
_LOCAL_SELECTOR = re.compile(r"(?:[A-Za-z][A-Za-z0-9-]*)?(?:[.#][A-Za-z_][A-Za-z0-9_-]*)*\Z")

# The element kind: tag, class, id, style. Its resolution: the attributes to set, in order.
_Kind = tuple[str, str | None, str | None, str | None]
_Assignments = tuple[tuple[str, str], ...]


def premailer_with_options() -> Premailer:
    """premailer as the emails use it: no network, no validation, classes and ``!important``
    kept, ``<style>`` reduced to the rules that cannot be inlined."""
    import logging

    return Premailer(
        allow_network=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
        remove_classes=False,
        keep_style_tags=False,
        strip_important=False,
    )


class LocalStylesheet:
    """The inlinable rules of one or more stylesheets, resolved per element kind on first sight."""

    def __init__(
        self,
        sheets: tuple[str, ...],
        premailer: Premailer,
        rules: list[tuple[Any, str, str]],
        leftovers: list[str | None],
    ) -> None:
        self.sheets = tuple(css.strip() for css in sheets)  # the same rules, however spaced
        self._premailer = premailer
        self._rules = [
            (CSSSelector(selector), csstext_to_pairs(bulk, validate=False))
            for _, selector, bulk in sorted(rules, key=operator.itemgetter(0))
        ]
        self._leftovers = leftovers  # per sheet: its <style> text after inlining, None: removed
        self._kinds: dict[_Kind, _Assignments] = {}

    @property
    def kinds_resolved(self) -> int:
        """How many distinct element kinds premailer's rules were worked out for."""
        return len(self._kinds)

    @classmethod
    def of(cls, sheets: Sequence[str]) -> LocalStylesheet | None:
        """The resolved ``sheets`` (in document order), or None when a rule is not element-local."""
        premailer = premailer_with_options()
        rules: list[tuple[Any, str, str]] = []
        leftovers: list[str | None] = []
        for index, css in enumerate(sheets):
            these_rules, leftover = premailer._parse_style_rules(css, index)
            if any(not _LOCAL_SELECTOR.match(selector) for _, selector, _ in these_rules):
                return None
            rules.extend(these_rules)
            leftovers.append(premailer._css_rules_to_string(leftover) if leftover else None)
        return cls(tuple(sheets), premailer, rules, leftovers)

    def transform(self, html: str) -> str | None:
        """``html`` as premailer would inline it, or None when this document is not replayable."""
        stripped = html.strip()
        tree = etree.fromstring(stripped, etree.HTMLParser()).getroottree()
        page = tree.getroot()
        if page is None:
            return None
        doctype = tree.docinfo.doctype
        root: Any = tree if stripped.startswith(doctype) else page
        styles = list(page.iter("style"))
        if tuple((style.text or "").strip() for style in styles) != self.sheets or any(
            "media" in style.attrib or Premailer.attribute_name in style.attrib for style in styles
        ):
            return None
        if not self._premailer.disable_leftover_css:
            get_or_create_head(tree)
        for style, leftover in zip(styles, self._leftovers, strict=True):
            if leftover is None:
                style.getparent().remove(style)
            else:
                style.text = leftover
        for element in page.iter(tag=etree.Element):
            kind = (element.tag, element.get("class"), element.get("id"), element.get("style"))
            assignments = self._kinds.get(kind)
            if assignments is None:
                assignments = self._kinds[kind] = self._resolve(kind)
            for name, value in assignments:
                element.set(name, value)
        out: bytes = etree.tostring(root, method="html", pretty_print=True, encoding="utf-8")
        return out.decode("utf-8")

    def _resolve(self, kind: _Kind) -> _Assignments:
        """What premailer's ``transform`` does to an element of this kind, as attribute sets."""
        tag, class_, id_, style = kind
        element = etree.Element(tag)
        for name, value in (("class", class_), ("id", id_), ("style", style)):
            if value is not None:
                element.set(name, value)
        before = dict(element.attrib)
        matched = [pairs for selector, pairs in self._rules if selector(element)]
        if matched:
            final = merge_styles(
                element.get("style", ""),
                matched,
                [""] * len(matched),
                remove_unset_properties=self._premailer.remove_unset_properties,
            )
            if final:
                element.set("style", final)
            self._premailer._style_to_basic_html_attributes(element, final, force=True)
        if "style" in element.attrib:
            if self._premailer.capitalize_float_margin:
                element.set("style", capitalize_float_margin(element.get("style")))
            if tag == "img" and self._premailer.align_floating_images:
                floating = cssutils.parseStyle(element.get("style")).float
                if floating in ("left", "right"):
                    element.set("align", floating)
        return tuple(
            (name, value) for name, value in element.attrib.items() if before.get(name) != value
        )
