"""The Jinja2 environment of the emails: bundled templates, operator overrides, the text filters,
and one error type for everything a template can do wrong.

Templates autoescape (HTML), refuse undefined variables, and find an operator's template of the
same name (``[digest] templates``) before the bundled one. Any failure, at load or at render time
(a syntax error, ``1 // 0``, a recursive include, a file that is not UTF-8), becomes one
:class:`~digest.errors.TemplateError` naming the template file and line.
"""

from __future__ import annotations

import functools
import textwrap
from pathlib import Path
from typing import Any

import jinja2

import digest
from digest.errors import TemplateError

HTML_TEMPLATE = "digest.html.j2"
CARD_TEMPLATE = "paper.html.j2"
TEXT_TEMPLATE = "digest.txt.j2"
STYLESHEET = "digest.css"
INDEX_TEMPLATE = "preview_index.html.j2"
TEMPLATE_NAMES = (HTML_TEMPLATE, CARD_TEMPLATE, TEXT_TEMPLATE, STYLESHEET)
TEXT_WIDTH = 72  # the plain-text part fits a terminal mail client, quoted once or twice


def templates_dir() -> Path:
    """The bundled templates: inside the installed package, else the source tree's folder."""
    packaged = Path(digest.__file__).parent / "templates"
    return packaged if packaged.is_dir() else Path(digest.__file__).parent.parent / "templates"


def _wrap(value: Any, width: int = TEXT_WIDTH, indent: str = "", first: str | None = None) -> str:
    """Jinja filter: ``value`` wrapped for the text part; long URLs are never broken."""
    return _wrapped(str(value), width, indent, indent if first is None else first)


@functools.lru_cache(maxsize=16_384)
def _wrapped(text: str, width: int, indent: str, first: str) -> str:
    # The same abstract is wrapped for every subscriber who gets the paper: wrap it once.
    return textwrap.fill(
        text,
        width=width,
        initial_indent=first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def make_environment(override: Path | None = None) -> jinja2.Environment:
    """The Jinja2 environment: operator templates in ``override`` first, then the bundled ones."""
    loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(templates_dir())]
    if override is not None:
        loaders.insert(0, jinja2.FileSystemLoader(override))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "html.j2"), default_for_string=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = _wrap
    return env


def load_template(env: jinja2.Environment, name: str) -> jinja2.Template:
    """The template ``name`` (an operator's override first); TemplateError when it cannot load."""
    try:
        return env.get_template(name)
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(
            f"template {name} not found",
            where=name,
            hint=f"restore it, or copy the bundled one from {templates_dir() / name}",
        ) from exc
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"template syntax error: {exc.message}",
            where=f"{exc.filename or name}:{exc.lineno}",
            hint="fix the Jinja2 syntax at that line",
        ) from exc
    except (UnicodeDecodeError, OSError, RecursionError) as exc:
        raise TemplateError(
            f"template {name} cannot be read: {exc}",
            where=name,
            hint="save the template as UTF-8 text",
        ) from exc


def render_template(template: jinja2.Template, context: dict[str, Any] | None = None) -> str:
    """``template`` rendered; any failure inside it is a TemplateError naming file and line."""
    try:
        return str(template.render(**(context or {})))
    except Exception as exc:  # a template can raise anything: its author's error, never ours
        raise _template_error(template, exc) from exc


def _template_error(template: jinja2.Template, exc: BaseException) -> TemplateError:
    name = template.name or "template"
    where = template.filename or name
    line = None
    tb = exc.__traceback__
    while tb is not None:  # Jinja rewrites tracebacks so template frames carry file and line
        filename = tb.tb_frame.f_code.co_filename
        if not filename.endswith(".py") and not filename.startswith("<"):
            where, line = filename, tb.tb_lineno
        tb = tb.tb_next
    if isinstance(exc, jinja2.TemplateSyntaxError):
        where, line = exc.filename or where, exc.lineno
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, RecursionError):
        detail = "it includes or calls itself without end"
    elif isinstance(exc, MemoryError):
        detail = "it tried to build something too large for memory"
    return TemplateError(
        f"template {name} failed: {type(exc).__name__}: {detail}"[:500],
        where=f"{where}:{line}" if line else where,
        hint="fix the template at that line, or remove it to use the bundled one "
        f"({templates_dir() / name})",
    )
