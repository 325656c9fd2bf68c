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
from digest.config import (
    Config,
    bundled_path,
    default_config,
    find_config_path,
    load_config,
    missing_config_hint,
    store_location,
)
from digest.errors import UsageError

if TYPE_CHECKING:
    from digest.deliver import Channel
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
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(example, encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"cannot write the starter config: {exc.strerror or exc}",
            where=str(target),
            hint="choose a path in a folder you can write to",
        ) from exc
    print(f"wrote {target}")
    print("it reads the bundled sample days; uncomment its hf-api source for the live feed")
    print(f"next: edit it, then `digest --config {target} check` and `... preview`")
    return 0


def check(args: argparse.Namespace) -> int:
    from digest.app import Digest

    config = load(args)
    # what the servers answer comes before the verdict, which is said once, last (a failure is
    # the error line instead)
    report = Digest(config).check(sources=args.sources, smtp=args.smtp)
    for line in report.lines:
        print(line)
    console.problems(f"warning: {warning}" for warning in report.warnings)
    note_no_live_source(config)
    print(f"{config.path}: OK")
    return 0


def fetch(args: argparse.Namespace) -> int:
    from digest import pipeline
    from digest.config import source_from
    from digest.sources.fetch import make_client

    config = load(args, required=not args.source)
    sources = [source_from(_source_entry(s)) for s in args.source] if args.source else None
    with make_client(config.fetch.timeout, config.fetch.connect_timeout) as client:
        batch = pipeline.collect(
            config, client=client, day=day_of(config, args), sources=sources,
            watcher=console.fetch_progress(),
        )  # fmt: skip
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
    with contextlib.ExitStack() as stack:
        # the test channel first: a --send-to that cannot work fails before anything is written
        channel = (
            stack.enter_context(open_test_channel(config, args.send_to)) if args.send_to else None
        )
        client = stack.enter_context(
            make_client(config.fetch.timeout, config.fetch.connect_timeout)
        )
        store = stack.enter_context(open_config_store(config, readonly=True))
        result = pipeline.preview(
            config,
            client=client,
            store=store,
            now=now(),
            day=day_of(config, args),
            out_dir=Path(args.out),
            only=args.subscriber,
            watcher=console.fetch_progress(),
        )
        console.problems(result.report.problems())
        for path in result.paths:
            print(path)
        if args.open and result.paths:
            # the subscriber's own email when one was asked for, else the index of them all
            chosen = result.paths[1] if args.subscriber and len(result.paths) > 1 else None
            webbrowser.open((chosen or result.paths[0]).resolve().as_uri())
        if channel is not None:
            emails = result.emails[:1]
            if not emails:
                raise UsageError("--send-to: no subscriber's preview to send")
            pipeline.send_test(channel, emails, args.send_to, now())
            print(f"sent {emails[0][0].email}'s preview to {args.send_to} (subject marked [test])")
    return result.report.exit_code


def run(args: argparse.Namespace) -> int:
    config = load(args)
    report = run_once(config, dry_run=args.dry_run, day=day_of(config, args), only=args.subscriber)
    console.problems(report.problems())
    if args.quiet <= 0:  # -q: only the problems, so cron mails nothing when all went well
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


def serve(args: argparse.Namespace) -> int:
    from digest.app import Digest

    config = load(args)
    host = args.host or config.server.host
    port = args.port or config.server.port
    print(f"serving the readers' pages on http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    Digest(config).serve(host=host, port=port)
    return 0


# --- shared by the commands -----------------------------------------------------------------------


def run_once(
    config: Config,
    *,
    dry_run: bool,
    day: dt.date,
    only: str | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> RunReport:
    """One `digest run` on ``config`` through the library core (:class:`digest.app.Digest`),
    with the terminal's progress display."""
    from digest.app import Digest

    return Digest(config, clock=now).run(
        day=day,
        dry_run=dry_run,
        only=only,
        should_stop=should_stop,
        progress=console.progress_bar("sending"),
        watcher=console.fetch_progress(),
    )


def open_test_channel(config: Config, address: str) -> Channel:
    """The SMTP channel of ``[delivery.smtp]`` whatever ``method`` says, for test sends to
    ``address`` (UsageError when it is not one address or there is no such table)."""
    from digest.addresses import wire_address
    from digest.stage_settings import channel_context

    try:
        wire_address(address)
    except ValueError as exc:
        raise UsageError(f"--send-to {address!r}: {exc}", hint="give one address") from exc
    smtp = config.delivery.option("smtp")
    if smtp is None:
        raise UsageError(
            "--send-to mails over SMTP, and the config has no [delivery.smtp]",
            where=str(config.path),
            hint="add a [delivery.smtp] table (`digest init --print` shows one)",
        )
    from digest.deliver import open_channel

    return open_channel("smtp", smtp, channel_context(config))


def load(args: argparse.Namespace, *, required: bool = True) -> Config:
    """The config file the arguments name (``--config``, ``$DIGEST_CONFIG``, ``./digest.toml``)."""
    path = find_config_path(args.config)
    if not required and not path.exists():
        return default_config()
    return load_config(path, missing_hint=missing_config_hint(args.config))


def open_config_store(config: Config, *, readonly: bool = False) -> Store:
    """The store ``[digest] store`` names, relative to the config file."""
    from digest.store import open_store

    return open_store(store_location(config), base_dir=config.base_dir, readonly=readonly)


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
            f"{where} reads only the bundled sample days; "
            "uncomment its hf-api [[sources]] block for the live Daily Papers"
        )


def _source_entry(location: str) -> dict[str, str]:
    if location.startswith(("http://", "https://")):
        return {"kind": "page", "url": location}
    return {"kind": "page", "path": location}


def _hint(hint: str | None) -> str:
    return f" ({hint})" if hint else ""
