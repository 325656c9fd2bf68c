"""The rules for untrusted text: control characters, line breaks, surrogates, and which URLs link.

Titles, abstracts and names come from sources and config files and can hold anything. Text is
cleaned before it is shown (:func:`clean_text`), names lose their control characters
(:func:`strip_controls`), lone surrogates become U+FFFD (:func:`replace_surrogates`), and only
absolute http(s) URLs ever become links (:func:`safe_url`).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# C0/C1 controls (ESC starts terminal escape sequences), zero-width and bidi-override characters
# (they can disguise text), line/paragraph separators and the BOM.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")
# Whitespace, controls, backslashes (browsers read them as slashes) and quotes/angles.
_UNSAFE_IN_URL = re.compile(r"[\s\\<>\"'`]|" + _CONTROL.pattern)
_SAFE_SCHEMES = frozenset({"http", "https"})
_SURROGATE = re.compile("[\ud800-\udfff]")
_HAS_WORD = re.compile(r"[^\W_]")
# str.splitlines() breaks on all of these; any of them in a header could start a new header line
# in some reader, so every one counts as a line break, not just CR and LF.
LINE_BREAKS = frozenset("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_LINE_BREAK = re.compile("[" + "".join(sorted(LINE_BREAKS)) + "]")


def has_line_break(value: str) -> bool:
    """Whether ``value`` holds any character some reader takes for the end of a line, also
    once its RFC 2047 encoded-words (``=?utf-8?q?...=0D=0A...?=``) are decoded: a mail
    library decodes them when it folds a header, and a CR LF there would start a header line."""
    if _LINE_BREAK.search(value) is not None:
        return True
    return "=?" in value and _LINE_BREAK.search(decoded_words(value)) is not None


def decoded_words(value: str) -> str:
    """``value`` with its RFC 2047 encoded-words decoded (as a mail reader shows it)."""
    import email.header

    try:
        parts = email.header.decode_header(value)
    except (ValueError, LookupError, email.errors.HeaderParseError):
        return value
    decoded = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            try:
                decoded.append(chunk.decode(charset or "ascii", "replace"))
            except LookupError:
                decoded.append(chunk.decode("latin-1"))
        else:
            decoded.append(chunk)
    return "".join(decoded)


def safe_url(value: str | None) -> str | None:
    """``value`` if it is an absolute http(s) URL fit for an ``href``, else None.

    The one gate every link in the email passes through: ``javascript:``, ``data:``, relative
    paths, URLs with whitespace, control characters, backslashes or credentials are refused (and
    then shown as text by the templates, never as links).
    """
    if not value:
        return None
    url = value.strip()
    if not url or _UNSAFE_IN_URL.search(url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a malformed port
    except ValueError:
        return None
    del port
    if parts.scheme.lower() not in _SAFE_SCHEMES or not parts.hostname:
        return None
    if parts.username is not None or parts.password is not None:
        return None
    return url


def clean_text(value: str) -> str:
    """``value`` without control characters (terminal escapes, NULs, bidi overrides), whitespace
    collapsed."""
    if not value:
        return ""
    return " ".join(_CONTROL.sub(" ", value).split())


def strip_controls(value: str) -> str:
    """``value`` with control, zero-width and bidi characters removed (a name stays one word)."""
    return _CONTROL.sub("", value) if _CONTROL.search(value) else value


def replace_surrogates(value: str) -> str:
    """``value`` with unpaired surrogates (valid in JSON, not in UTF-8) replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value


def has_letters(value: str) -> bool:
    """Whether ``value`` has a letter or digit (a term of only punctuation can never match)."""
    return bool(_HAS_WORD.search(value))


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, at a word boundary, marked with "…"."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit - 1].rstrip(" ,;:-") + "…"
