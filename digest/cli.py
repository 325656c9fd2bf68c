"""The command line: the parser, and the one place where errors become one-line messages.

Each command is a function of :mod:`digest.commands`, imported only once a command runs, so
``digest --help`` loads argparse and little else. Global options (``--config``, ``-v``, ``-q``)
work before or after the command; bare ``digest`` prints the help.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from digest import __version__
from digest.errors import DigestError

Handler = Callable[[argparse.Namespace], int]
COMMAND_HELP = {
    "init": ("write a commented starter config", "init my.toml"),
    "check": ("validate the config, templates, sources and store", "--config my.toml check"),
    "fetch": (
        "read the sources and print the papers (changes nothing)",
        "fetch --source 'saved/*.txt' --json",
    ),
    "preview": (
        "render each subscriber's email locally (never sends)",
        "preview --subscriber ada@example.org --open",
    ),
    "run": ("one full cycle: fetch, match, render, deliver, record", "run --dry-run"),
    "daemon": ("run on the [schedule] until stopped", "daemon -v"),
    "seen": ("inspect or edit the store", "seen stats"),
    "subscribers": ("who gets mail, who left, who bounces", "subscribers list"),
    "feedback": (
        "record a reader's verdict on a paper (what their email's links do)",
        "feedback ada@example.org 2510.01459 more",
    ),
    "serve": ("readers' pages: unsubscribe (RFC 8058), digests, preferences", "serve --port 8391"),
    "store": ("make a store, or move it to another backend", "store init"),
}
GROUPS = ("seen", "subscribers", "store")  # commands with actions, in digest.commands_store


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``digest`` command; returns the exit status."""
    _sturdy_streams()
    try:
        return _main(argv)
    except BrokenPipeError:
        _quiet_stdout()  # `digest seen list | head`: the reader left, which is not an error
        return 0


def _sturdy_streams() -> None:
    """Output that survives the terminal: a closed stream (``2>&-``) becomes /dev/null, and a
    character the locale cannot show (``LC_ALL=C``, ``PYTHONIOENCODING=ascii``) an escape."""
    import io
    import os

    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None:
            setattr(sys, name, io.TextIOWrapper(open(os.devnull, "wb"), write_through=True))  # noqa: SIM115
        elif isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "command", None) is None:
        parser.print_help()
        return 0
    from digest.log import configure_logging

    configure_logging(args.verbose - args.quiet)
    try:
        return int(_handler(args)(args))
    except DigestError as exc:
        for line in str(exc).splitlines():
            print(f"digest: error: {line}", file=sys.stderr)
        if exc.hint:
            print(f"digest: hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("digest: interrupted", file=sys.stderr)
        return 130


def _handler(args: argparse.Namespace) -> Handler:
    if args.command == "feedback":
        from digest import commands_store

        return commands_store.feedback
    if args.command in GROUPS:
        from digest import commands_store

        group: Handler = getattr(commands_store, f"{args.command}_{args.action}")
        return group
    from digest import commands

    handler: Handler = getattr(commands, args.command)
    return handler


def _quiet_stdout() -> None:
    import os

    # Python would complain again when it flushes stdout at exit: point it at /dev/null.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _date(text: str) -> object:
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-23") from exc


def _global_options(*, top: bool) -> argparse.ArgumentParser:
    """``--config``, ``-v``, ``-q``: at the top level with defaults, in each command without
    (so a value given before the command is not reset by the command's parser)."""
    common = argparse.ArgumentParser(add_help=False)
    default = (lambda value: value) if top else (lambda value: argparse.SUPPRESS)
    common.add_argument(
        "--config",
        metavar="FILE",
        default=default(None),
        help="config file (default: $DIGEST_CONFIG, then ./digest.toml)",
    ).complete = _FILE  # type: ignore[attr-defined]
    common.add_argument(
        "-v", "--verbose", action="count", default=default(0), help="more output (repeatable)"
    )
    common.add_argument(
        "-q", "--quiet", action="count", default=default(0), help="only problems; less log output"
    )
    return common


class _PrintCompletion(argparse.Action):
    """``--print-completion SHELL``: the script shtab generates from this very parser (shtab is
    imported only then)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[object] | None,
        option_string: str | None = None,
    ) -> None:
        import shtab

        print(shtab.complete(parser, shell=str(values)))
        parser.exit(0)


# shtab's marks for arguments that complete to file or folder names (shtab.FILE, shtab.DIRECTORY)
_FILE = {"bash": "_shtab_compgen_files", "zsh": "_files", "tcsh": "f"}
_FOLDER = {"bash": "_shtab_compgen_dirs", "zsh": "_files -/", "tcsh": "d"}


def build_parser() -> argparse.ArgumentParser:
    """The whole command line (also what shell completion is generated from)."""
    parser = argparse.ArgumentParser(
        prog="digest",
        description="A daily email digest of new papers from Hugging Face Daily Papers.",
        epilog="example:\n  digest init && digest preview && digest run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_global_options(top=True)],
    )
    parser.add_argument("-V", "--version", action="version", version=f"paper-digest {__version__}")
    parser.add_argument(
        "--print-completion", choices=["bash", "zsh"], action=_PrintCompletion,
        help="print a shell completion script (e.g. `digest --print-completion bash "
        "> ~/.local/share/bash-completion/completions/digest`)",
    )  # fmt: skip
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = _global_options(top=False)

    init = _command(commands, "init", common)
    init.add_argument(
        "path", nargs="?", help="where to write it (default: ./digest.toml)"
    ).complete = _FILE  # type: ignore[attr-defined]
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.add_argument("--print", action="store_true", help="print the commented example instead")
    check = _command(commands, "check", common)
    check.add_argument(
        "--smtp", action="store_true",
        help="also open a session with the SMTP server (TLS, login), quit, and print its answers",
    )  # fmt: skip
    check.add_argument(
        "--sources", action="store_true",
        help="also ask each hf-api source for one entry, as a run would",
    )  # fmt: skip
    fetch = _command(commands, "fetch", common)
    fetch.add_argument(
        "--source", action="append", default=[], metavar="PATH_OR_URL",
        help="read this page, file, glob or URL instead of the configured sources",
    )  # fmt: skip
    fetch.add_argument("--json", action="store_true", help="one JSON object per line")
    preview = _command(commands, "preview", common)
    preview.add_argument("--subscriber", metavar="EMAIL", help="only this subscriber")
    preview.add_argument(
        "--out", default="preview", metavar="DIR", help="default: ./preview"
    ).complete = _FOLDER  # type: ignore[attr-defined]
    preview.add_argument("--open", action="store_true", help="open the result in a browser")
    preview.add_argument(
        "--send-to", metavar="ADDRESS",
        help="also mail the preview (of --subscriber, else the first subscriber) to ADDRESS over "
        "[delivery.smtp], subject marked [test]; nothing is recorded",
    )  # fmt: skip
    run = _command(commands, "run", common)
    run.add_argument("--dry-run", action="store_true", help="do everything but send and record")
    run.add_argument(
        "--subscriber", metavar="EMAIL",
        help="only this subscriber's digest, now (weekly or not), with the real ledger",
    )  # fmt: skip
    for dated in (fetch, preview, run):
        dated.add_argument("--date", type=_date, help="the digest's day (default: today)")
    _command(commands, "daemon", common)
    seen = _command(commands, "seen", common)
    actions = seen.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = _sub(actions, "list", "papers seen, newest first", "seen list --limit 20", common)
    listing.add_argument("--limit", type=_count, default=None, help="at most N papers (N >= 1)")
    _sub(actions, "stats", "counts, dates and size", "seen stats", common)
    forget = _sub(actions, "forget", "forget one paper", "seen forget 2401.01234", common)
    forget.add_argument("key", help="a paper key or arXiv id (any version)")
    _sub(actions, "prune", "drop what can no longer matter (runs do it too)", "seen prune", common)
    reset = _sub(actions, "reset", "forget everything", "seen reset --yes", common)
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    people = _command(commands, "subscribers", common)
    acts = people.add_subparsers(dest="action", required=True, metavar="ACTION")
    _sub(
        acts, "list", "status, cadence, last digest, totals, last error", "subscribers list", common
    )
    _sub(
        acts, "export", "the effective subscriber list (the TOML and readers' own changes) as TOML",
        "subscribers export > subscribers.toml", common,
    )  # fmt: skip
    leave = _sub(
        acts, "unsubscribe", "stop sending to a subscriber (the config still lists them)",
        "subscribers unsubscribe ada@example.org", common,
    )  # fmt: skip
    leave.add_argument("email", help="the subscriber's address, as in the config")
    back = _sub(
        acts, "resubscribe", "send again to a subscriber who left or was suspended",
        "subscribers resubscribe ada@example.org", common,
    )  # fmt: skip
    back.add_argument("email", nargs="?", help="the subscriber's address, as in the config")
    back.add_argument(
        "--suspended", action="store_true", help="every suspended subscriber at once (after a "
        "mail server fault was taken for bounces)",
    )  # fmt: skip
    store = _command(commands, "store", common)
    moves = store.add_subparsers(dest="action", required=True, metavar="ACTION")
    migrate = _sub(
        moves, "migrate", "copy the store into an empty one (SQLite <-> PostgreSQL), verified",
        "store migrate --to postgresql://digest@db.example.org/digest", common,
    )  # fmt: skip
    migrate.add_argument("--to", required=True, metavar="URL", help="the target: a URL or a path")
    _sub(moves, "init", "make a new, empty store where none exists", "store init", common)
    verdict = _command(commands, "feedback", common)
    verdict.add_argument(
        "email", metavar="EMAIL", help="the reader's address (or `list`, then the address)"
    )
    verdict.add_argument("paper", metavar="ARXIV_ID", help="a stored paper's arXiv id or key")
    verdict.add_argument("verdict", nargs="?", choices=("more", "less"), help="more or less")
    verdict.add_argument("--clear", action="store_true", help="take the verdict back")
    serve = _command(commands, "serve", common)
    serve.add_argument("--host", help="address to listen on (default: [server] host)")
    serve.add_argument("--port", type=int, help="port to listen on (default: [server] port)")
    return parser


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    common: argparse.ArgumentParser,
) -> argparse.ArgumentParser:
    summary, example = COMMAND_HELP[name]
    return _sub(commands, name, summary, example, common)


def _sub(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    example: str,
    common: argparse.ArgumentParser,
) -> argparse.ArgumentParser:
    """A sub-command whose help has a one-line summary and an example."""
    return commands.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=f"example:\n  digest {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )


def _count(text: str) -> int:
    """A count for an option: a whole number from 1 to a billion."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number") from None
    if not 1 <= value <= 1_000_000_000:
        raise argparse.ArgumentTypeError(f"{text[:40]} is not between 1 and 1000000000")
    return value
