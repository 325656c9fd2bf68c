"""The commands of ``digest``: each parses nothing, calls the library, and reports.

:mod:`digest.cli` parses the arguments and catches errors; every function here takes the parsed
arguments and returns the exit status. Stages are imported inside the command that needs them,
so ``digest check`` or ``digest seen list`` never pay for the scheduler, the HTML parser, the
CSS inliner or the HTTP client.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import sys
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from digest import console
from digest.config import Config, bundled_path, default_config, find_config_path, load_config
from digest.errors import UsageError

if TYPE_CHECKING:
    from digest.report import RunReport
    from digest.store import Store

EXAMPLE = "config.example.toml"


def init(args: argparse.Namespace) -> int:
    example = bundled_path(EXAMPLE).read_text(encoding="utf-8")
    if args.print:
        sys.stdout.write(example)
        return 0
    target = find_config_path(args.path or args.config)
    if target.exists() and not args.force:
        raise UsageError("already exists", where=str(target), hint="pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(example, encoding="utf-8")
    print(f"wrote {target}")
    print("it reads the bundled sample pages; uncomment its hf-api source for the live feed")
    print(f"next: edit it, then `digest --config {target} check` and `... preview`")
    return 0


def check(args: argparse.Namespace) -> int:
    from digest.check import check_config

    config = load(args)
    report = check_config(config)
    for line in report.lines:
        print(line)
    console.problems(f"warning: {warning}" for warning in report.warnings)
    note_no_live_source(config)
    return 0


def fetch(args: argparse.Namespace) -> int:
    from digest import pipeline
    from digest.config import source_from
    from digest.sources.fetch import make_client

    config = load(args, required=not args.source)
    sources = [source_from(_source_entry(s)) for s in args.source] if args.source else None
    with make_client(config.fetch.timeout, config.fetch.connect_timeout) as client:
        batch = pipeline.collect(config, client=client, day=day_of(config, args), sources=sources)
    for paper in batch.papers:
        if args.json:
            record = paper.model_dump(mode="json") | {"url": paper.hf_url or paper.arxiv_url}
            print(json.dumps(record, ensure_ascii=False))
        else:
            print(console.paper_row(paper.key, paper.published, paper.upvotes, paper.title))
    console.problems(f"error: {f.source}: {f.message}" + _hint(f.hint) for f in batch.failures)
    console.problems(f"warning: entry skipped: {s.source}: {s.message}" for s in batch.skipped)
    print(f"{len(batch.papers)} papers from {batch.entries} entries", file=sys.stderr)
    return 1 if batch.failures else 0


def preview(args: argparse.Namespace) -> int:
    import webbrowser

    from digest import pipeline
    from digest.sources.fetch import make_client

    config = load(args)
    with (
        make_client(config.fetch.timeout, config.fetch.connect_timeout) as client,
        open_config_store(config, readonly=True) as store,
    ):
        result = pipeline.preview(
            config,
            client=client,
            store=store,
            now=now(),
            day=day_of(config, args),
            out_dir=Path(args.out),
            only=args.subscriber,
        )
    console.problems(result.report.problems())
    for path in result.paths:
        print(path)
    if args.open and result.paths:
        webbrowser.open(result.paths[0].resolve().as_uri())
    return result.report.exit_code


def run(args: argparse.Namespace) -> int:
    config = load(args)
    report = run_once(config, dry_run=args.dry_run, day=day_of(config, args))
    console.problems(report.problems())
    if args.quiet <= 0:
        for line in report.summary(every_subscriber=True if args.verbose else None):
            print(line)
    note_no_live_source(config)
    return report.exit_code


def daemon(args: argparse.Namespace) -> int:
    import logging

    from digest.schedule.daemon import run_daemon

    config = load(args)
    note_no_live_source(config)
    log = logging.getLogger("digest")

    def run_scheduled(should_stop: Callable[[], bool]) -> int:
        fresh = load(args)  # operators edit subscribers without restarting the daemon
        report = run_once(fresh, dry_run=False, day=day_of(fresh, args), should_stop=should_stop)
        for line in report.summary():
            log.info("%s", line)
        return report.exit_code

    return run_daemon(config, run_scheduled)


def seen_list(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit {args.limit}: give a number of papers, 1 or more")
    config = load(args)
    with open_config_store(config, readonly=True) as store:
        rows = store.list_seen(limit=args.limit)
    print(console.paper_header("FIRST SEEN", "SENT"))
    for row in rows:
        print(console.paper_row(row.key, row.first_seen.date(), row.sent, row.title))
    return 0


def seen_stats(args: argparse.Namespace) -> int:
    config = load(args)
    with open_config_store(config, readonly=True) as store:
        for name, value in store.stats().as_rows():
            print(f"{name:<22} {value}")
    return 0


def seen_forget(args: argparse.Namespace) -> int:
    config = load(args)
    with open_config_store(config) as store, store.run_lock():
        if not store.forget(args.key):
            raise UsageError(
                f"no paper {args.key!r} in the store",
                where=store.location,
                hint="see the keys with `digest seen list`",
            )
    print(f"forgot {args.key}: it counts as new the next time a source carries it")
    return 0


def seen_prune(args: argparse.Namespace) -> int:
    from digest.plan import retention

    config = load(args)
    keep = retention(config.digest.lookback_days)
    with open_config_store(config) as store, store.run_lock():
        report = store.prune(now(), keep)
    print(
        f"pruned {report.digests} sent digests and {report.records} paper records older than "
        f"{keep.days} days (identities and what is owed are kept)"
    )
    return 0


def seen_reset(args: argparse.Namespace) -> int:
    config = load(args)
    where = config.digest.store
    if not (args.yes or console.confirm(f"forget every paper and delivery in {where}?")):
        print("nothing changed")
        return 1
    with open_config_store(config) as store, store.run_lock():
        store.reset()
    print(f"reset {store.location}")
    return 0


# --- shared by the commands -----------------------------------------------------------------------


def run_once(
    config: Config,
    *,
    dry_run: bool,
    day: dt.date,
    should_stop: Callable[[], bool] = lambda: False,
) -> RunReport:
    """One `digest run` on ``config``: store, lock, HTTP client and channel opened and closed."""
    from digest import pipeline
    from digest.sources.fetch import make_client
    from digest.stage_settings import open_configured_channel

    with contextlib.ExitStack() as stack:
        store = stack.enter_context(open_config_store(config, readonly=dry_run))
        if not dry_run:
            stack.enter_context(store.run_lock())
        client = stack.enter_context(
            make_client(config.fetch.timeout, config.fetch.connect_timeout)
        )
        channel = None if dry_run else stack.enter_context(open_configured_channel(config))
        return pipeline.run(
            config,
            client=client,
            store=store,
            channel=channel,
            now=now(),
            day=day,
            dry_run=dry_run,
            should_stop=should_stop,
            progress=console.progress_bar("subscribers"),
        )
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow


def load(args: argparse.Namespace, *, required: bool = True) -> Config:
    """The config file the arguments name (``--config``, ``$DIGEST_CONFIG``, ``./digest.toml``)."""
    path = find_config_path(args.config)
    if not required and not path.exists():
        return default_config()
    return load_config(path)


def open_config_store(config: Config, *, readonly: bool = False) -> Store:
    """The store ``[digest] store`` names, relative to the config file."""
    from digest.store import open_store

    return open_store(config.digest.store, base_dir=config.base_dir, readonly=readonly)


def now() -> dt.datetime:
    """The clock of the command line."""
    return dt.datetime.now(dt.UTC)


def day_of(config: Config, args: argparse.Namespace) -> dt.date:
    """``--date``, else today in ``[digest] timezone``."""
    given: dt.date | None = getattr(args, "date", None)
    return given or now().astimezone(zoneinfo.ZoneInfo(config.digest.timezone)).date()


def note_no_live_source(config: Config) -> None:
    """Say so when the config reads no source, or only the bundled samples."""
    # The starter config reads only the shipped samples: fine for a demo, but a real setup left
    # like that (or with no source at all) would quietly find nothing new every morning.
    where = config.path or "the config"
    if not config.sources:
        console.note(f"{where} has no [[sources]]; add one (`digest init --print` shows how)")
    elif config.samples_only:
        console.note(
            f"{where} reads only the bundled sample pages; "
            "uncomment its hf-api [[sources]] block for the live Daily Papers"
        )


def _source_entry(location: str) -> dict[str, str]:
    if location.startswith(("http://", "https://")):
        return {"kind": "page", "url": location}
    return {"kind": "page", "path": location}


def _hint(hint: str | None) -> str:
    return f" ({hint})" if hint else ""
