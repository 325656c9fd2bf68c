"""The command line: parse, call the library, report; the one place errors become messages."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import sys
import webbrowser
import zoneinfo
from collections.abc import Callable, Sequence
from pathlib import Path

from digest import __version__, pipeline
from digest.config import Config, bundled_path, find_config_path, load_config
from digest.deliver import open_transport
from digest.errors import DigestError, UsageError
from digest.models import SourceFailure
from digest.render import Renderer
from digest.schedule import configure_logging, run_daemon
from digest.sources import source_for
from digest.sources.fetch import make_client
from digest.store import Store, open_store

Handler = Callable[[argparse.Namespace], int]
log = logging.getLogger("digest")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``digest`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    configure_logging(args.verbose - args.quiet)
    handler: Handler = args.handler
    try:
        return handler(args)
    except DigestError as exc:
        for line in str(exc).splitlines():
            print(f"digest: error: {line}", file=sys.stderr)
        if exc.hint:
            print(f"digest: hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("digest: interrupted", file=sys.stderr)
        return 130


# --- commands ---------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    target = find_config_path(args.path or args.config)
    if target.exists() and not args.force:
        raise UsageError("already exists", where=str(target), hint="pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(bundled_path("config.example.toml").read_text(encoding="utf-8"))
    print(f"wrote {target}")
    print("it reads the bundled sample pages; uncomment its hf-api source for the live feed")
    print(f"next: edit it, then `digest --config {target} check` and `... preview`")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    config = _load(args)
    Renderer(config)  # a broken template override is a configuration error too
    with _open_store(config, readonly=True) as store:
        papers = store.stats().papers
    delivery = config.delivery
    folder = {"file": delivery.outbox, "maildir": delivery.maildir}.get(delivery.method)
    target = str(config.resolve(folder)) if folder else delivery.smtp.host if delivery.smtp else ""
    print(f"{config.path}: OK")
    print(f"  {len(config.sources)} sources, {len(config.subscribers)} subscribers")
    print(f"  store: {config.store_path} ({papers} papers seen)")
    print(f"  delivery: {delivery.method} -> {target}")
    _note_no_live_source(config)
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    config = _load(args, required=not args.source)
    sources = [source_for(s) for s in args.source] if args.source else None
    with make_client(config.fetch) as client:
        batch = pipeline.collect(config, client=client, day=_day(config, args), sources=sources)
    for paper in batch.papers:
        if args.json:
            record = paper.model_dump(mode="json") | {"url": paper.hf_url or paper.arxiv_url}
            print(json.dumps(record, ensure_ascii=False))
        else:
            print(_paper_row(paper.key, paper.published, paper.upvotes, paper.title))
    _report_failures(batch.failures)
    print(f"{len(batch.papers)} papers from {batch.entries} entries", file=sys.stderr)
    return 1 if batch.failures else 0


def cmd_preview(args: argparse.Namespace) -> int:
    config = _load(args)
    out_dir = Path(args.out)
    with make_client(config.fetch) as client, _open_store(config, readonly=True) as store:
        result = pipeline.preview(
            config,
            client=client,
            store=store,
            now=_now(),
            day=_day(config, args),
            out_dir=out_dir,
            only=args.subscriber,
        )
    _report_failures(result.report.failures)
    for path in result.paths:
        print(path)
    if args.open and result.paths:
        webbrowser.open(result.paths[0].resolve().as_uri())
    return result.report.exit_code


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args)
    report = _run_once(config, dry_run=args.dry_run, day=_day(config, args))
    for line in report.summary(every_subscriber=True if args.verbose else None):
        print(line)
    _note_no_live_source(config)
    return report.exit_code


def cmd_daemon(args: argparse.Namespace) -> int:
    config = _load(args)
    _note_no_live_source(config)

    def run_once(should_stop: Callable[[], bool]) -> int:
        fresh = _load(args)  # operators edit subscribers without restarting the daemon
        report = _run_once(fresh, dry_run=False, day=_day(fresh, args), should_stop=should_stop)
        for line in report.summary():
            log.info("%s", line)
        return report.exit_code

    return run_daemon(config, run_once)


def cmd_seen_list(args: argparse.Namespace) -> int:
    config = _load(args)
    with _open_store(config, readonly=True) as store:
        for row in store.list_seen(limit=args.limit):
            print(_paper_row(row.key, row.first_seen.date(), row.sent, row.title))
    return 0


def cmd_seen_stats(args: argparse.Namespace) -> int:
    config = _load(args)
    with _open_store(config, readonly=True) as store:
        for name, value in store.stats().as_rows():
            print(f"{name:<22} {value}")
    return 0


def cmd_seen_forget(args: argparse.Namespace) -> int:
    config = _load(args)
    with _open_store(config) as store, store.run_lock():
        if not store.forget(args.key):
            raise UsageError(
                f"no paper {args.key!r} in the store",
                where=str(config.store_path),
                hint="see the keys with `digest seen list`",
            )
    print(f"forgot {args.key}: it counts as new the next time a source carries it")
    return 0


def cmd_seen_reset(args: argparse.Namespace) -> int:
    config = _load(args)
    if not (args.yes or _confirm(f"forget every paper and delivery in {config.store_path}?")):
        print("nothing changed")
        return 1
    with _open_store(config) as store, store.run_lock():
        store.reset()
    print(f"reset {config.store_path}")
    return 0


# --- helpers shared by the commands -------------------------------------------------------------


def _run_once(
    config: Config,
    *,
    dry_run: bool,
    day: dt.date,
    should_stop: Callable[[], bool] = lambda: False,
) -> pipeline.RunReport:
    store_readonly = dry_run
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(_open_store(config, readonly=store_readonly))
        if not dry_run:
            stack.enter_context(store.run_lock())
        client = stack.enter_context(make_client(config.fetch))
        transport = None if dry_run else stack.enter_context(open_transport(config))
        return pipeline.run(
            config,
            client=client,
            store=store,
            transport=transport,
            now=_now(),
            day=day,
            dry_run=dry_run,
            should_stop=should_stop,
            progress=_progress_bar(),
        )
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow


def _load(args: argparse.Namespace, *, required: bool = True) -> Config:
    path = find_config_path(args.config)
    if not required and not path.exists():
        return Config()
    return load_config(path)


def _open_store(config: Config, *, readonly: bool = False) -> Store:
    return open_store(config.digest.store, base_dir=config.base_dir, readonly=readonly)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _day(config: Config, args: argparse.Namespace) -> dt.date:
    given: dt.date | None = getattr(args, "date", None)
    return given or _now().astimezone(zoneinfo.ZoneInfo(config.digest.timezone)).date()


def _paper_row(key: str, day: dt.date | None, number: int | None, title: str) -> str:
    shown = title if len(title) <= 80 else title[:79] + "…"
    return f"{key:<22} {day or '':<10} {'' if number is None else number:>5}  {shown}"


def _report_failures(failures: Sequence[SourceFailure]) -> None:
    for failure in failures:
        hint = f" ({failure.hint})" if failure.hint else ""
        print(f"digest: error: {failure.source}: {failure.message}{hint}", file=sys.stderr)


def _note_no_live_source(config: Config) -> None:
    # The starter config reads only the shipped samples: fine for a demo, but a real setup left
    # like that (or with no source at all) would quietly find nothing new every morning.
    where = config.path or "the config"
    if not config.sources:
        note = f"{where} has no [[sources]]; add the hf-api source (see config.example.toml)"
    elif config.samples_only:
        note = (
            f"{where} reads only the bundled sample pages; "
            "uncomment its hf-api [[sources]] block for the live Daily Papers"
        )
    else:
        return
    print(f"digest: note: {note}", file=sys.stderr)


def _progress_bar() -> pipeline.Progress | None:
    if not sys.stderr.isatty():
        return None  # cron and journald get the summary only

    def show(done: int, total: int) -> None:
        end = "\n" if done == total else ""
        print(f"\rdigest: {done}/{total} subscribers", end=end, file=sys.stderr, flush=True)

    return show


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise UsageError("refusing to reset without confirmation", hint="pass --yes")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-23") from exc


# --- the parser -----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="digest",
        description="A daily email digest of new papers from Hugging Face Daily Papers.",
        epilog="example:\n  digest init && digest preview && digest run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", metavar="FILE", help="config file (default: $DIGEST_CONFIG, then ./digest.toml)"
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action="count", default=0, help="less log output")
    parser.add_argument("--version", action="version", version=f"paper-digest {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = _command(commands, "init", cmd_init, "write a commented starter config", "init my.toml")
    init.add_argument("path", nargs="?", help="where to write it (default: ./digest.toml)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    _command(commands, "check", cmd_check, "validate the config file", "--config my.toml check")
    fetch = _command(
        commands, "fetch", cmd_fetch, "read the sources and print the papers (changes nothing)",
        "fetch --source 'saved/*.txt' --json",
    )  # fmt: skip
    fetch.add_argument(
        "--source", action="append", default=[], metavar="PATH_OR_URL",
        help="read this page, file, glob or URL instead of the configured sources",
    )  # fmt: skip
    fetch.add_argument("--json", action="store_true", help="one JSON object per line")
    preview = _command(
        commands, "preview", cmd_preview, "render each subscriber's email locally (never sends)",
        "preview --subscriber ada@example.org --open",
    )  # fmt: skip
    preview.add_argument("--subscriber", metavar="EMAIL", help="only this subscriber")
    preview.add_argument("--out", default="preview", metavar="DIR", help="default: ./preview")
    preview.add_argument("--open", action="store_true", help="open the result in a browser")
    run = _command(
        commands, "run", cmd_run, "one full cycle: fetch, match, render, deliver, record",
        "run --dry-run",
    )  # fmt: skip
    run.add_argument("--dry-run", action="store_true", help="do everything but send and record")
    for dated in (fetch, preview, run):
        dated.add_argument("--date", type=_date, help="the digest's day (default: today)")
    _command(commands, "daemon", cmd_daemon, "run on the [schedule] until stopped", "-v daemon")
    seen = _command(commands, "seen", None, "inspect or edit the store", "seen stats")
    actions = seen.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = _command(actions, "list", cmd_seen_list, "papers seen, newest first", "seen list")
    listing.add_argument("--limit", type=int, default=None, help="at most N papers")
    _command(actions, "stats", cmd_seen_stats, "counts, dates and size", "seen stats")
    forget = _command(
        actions, "forget", cmd_seen_forget, "forget one paper", "seen forget 2401.01234"
    )
    forget.add_argument("key", help="a paper key or arXiv id (any version)")
    reset = _command(actions, "reset", cmd_seen_reset, "forget everything", "seen reset --yes")
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    return parser


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    handler: Handler | None,
    summary: str,
    example: str,
) -> argparse.ArgumentParser:
    """A sub-command whose help has a one-line summary and an example."""
    sub = commands.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=f"example:\n  digest {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if handler is not None:
        sub.set_defaults(handler=handler)
    return sub
