"""The commands that look after the store: ``seen ...`` (papers), ``subscribers ...`` and
``feedback`` (readers' verdicts).

Like :mod:`digest.commands`: each parses nothing, calls the store, and reports.
"""

from __future__ import annotations

import argparse
import sys

from digest import console
from digest.commands import load, now, open_config_store
from digest.config import Config, store_location
from digest.errors import UsageError
from digest.models import Subscriber


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
    keep = retention(config.digest.lookback_days, config.subscriber_list)
    with open_config_store(config) as store, store.run_lock():
        report = store.prune(now(), keep)
    print(
        f"pruned {report.digests} sent digests and {report.records} paper records older than "
        f"{keep.days} days (identities and what is owed are kept)"
    )
    return 0


def seen_reset(args: argparse.Namespace) -> int:
    config = load(args)
    where = store_location(config)
    if not (args.yes or console.confirm(f"forget every paper and delivery in {where}?")):
        print("nothing changed")
        return 1
    with open_config_store(config) as store, store.run_lock():
        store.reset()
    print(f"reset {store.location}")
    return 0


def subscribers_list(args: argparse.Namespace) -> int:
    from digest.pipeline import readers
    from digest.preferences import changed_keys

    config = load(args)
    with open_config_store(config, readonly=True) as store:
        states = store.subscriber_states()
        saved = store.preferences() if config.server.self_service else {}
        effective = readers(config, store)
    print(console.subscriber_header())
    listed = set()
    for subscriber in effective:
        state = states.get(subscriber.address)
        listed.add(subscriber.address)
        own = changed_keys(saved.get(subscriber.address, {}))
        note = f"their own {', '.join(own)} (from their page)" if own else ""
        print(console.subscriber_row(subscriber.email, subscriber.frequency, state, note=note))
    for address, state in sorted(states.items()):
        if address not in listed:
            print(console.subscriber_row(address, "-", state, note="not in the config"))
    return 0


def subscribers_export(args: argparse.Namespace) -> int:
    from digest.pipeline import readers
    from digest.preferences import export_toml

    config = load(args)
    with open_config_store(config, readonly=True) as store:
        effective = readers(config, store)
    sys.stdout.write(export_toml(effective))
    return 0


def subscribers_unsubscribe(args: argparse.Namespace) -> int:
    config = load(args)
    subscriber = known_subscriber(config, args.email)
    with open_config_store(config) as store:
        store.set_subscriber_status(subscriber.email, "unsubscribed", "digest subscribers", now())
    print(f"unsubscribed {subscriber.email}: runs skip them until `digest subscribers resubscribe`")
    return 0


def subscribers_resubscribe(args: argparse.Namespace) -> int:
    config = load(args)
    if args.suspended == (args.email is not None):
        raise UsageError(
            "give one address or --suspended",
            hint="digest subscribers resubscribe ada@example.org, or --suspended for all",
        )
    if args.suspended:
        with open_config_store(config) as store:
            states = store.subscriber_states()
            back = sorted(a for a, s in states.items() if s.status == "suspended")
            for address in back:
                store.set_subscriber_status(address, "active", "digest subscribers", now())
        for address in back:
            print(f"{address} is active (was suspended: {states[address].how})")
        print(f"{len(back)} suspended subscribers are active again: the next run sends to them")
        return 0
    subscriber = known_subscriber(config, args.email)
    with open_config_store(config) as store:
        before = store.subscriber_states([subscriber.email]).get(subscriber.address)
        store.set_subscriber_status(subscriber.email, "active", "digest subscribers", now())
    was = before.status if before is not None else "active"
    print(f"{subscriber.email} is active (was {was}): the next run sends to them again")
    return 0


def feedback(args: argparse.Namespace) -> int:
    from digest import feedback as verdicts

    config = load(args)
    if args.email == "list":
        reader = known_subscriber(config, args.paper)
        with open_config_store(config, readonly=True) as store:
            given = verdicts.verdicts_of(store, reader.email)
        for each in given:
            print(console.verdict_row(each.paper.key, each.word, each.paper.title))
        print(
            f"{reader.email}: {len(given)} verdict{'' if len(given) == 1 else 's'}", file=sys.stderr
        )
        return 0
    if args.clear == (args.verdict is not None):
        raise UsageError(
            "give a verdict (more or less) or --clear",
            hint="digest feedback ada@example.org 2510.01459 more",
        )
    reader = known_subscriber(config, args.email)
    with open_config_store(config) as store:
        paper = verdicts.stored_paper(store, args.paper)
        value = None if args.clear else verdicts.VERDICTS[args.verdict]
        changed = verdicts.record(store, reader.email, paper, value, now())
    said = "cleared" if value is None else verdicts.WORDS[value]
    print(
        f"{reader.email}: {said}: {paper.key} {paper.title}" + ("" if changed else " (as before)")
    )
    return 0


def known_subscriber(config: Config, email: str) -> Subscriber:
    """The config's subscriber of ``email`` (any case); UsageError when there is none."""
    from digest.roster import known_subscriber as find

    return find(config.subscriber_list, email, where=str(config.path))


def store_migrate(args: argparse.Namespace) -> int:
    from digest.store import open_store
    from digest.store.transfer import copy_store

    config = load(args)
    with (
        open_config_store(config) as source,
        source.run_lock(),
        open_store(args.to, base_dir=config.base_dir) as target,
    ):
        copied = copy_store(source, target)
    rows = ", ".join(f"{count} {table}" for table, count in copied.rows.items())
    print(f"copied {source.location} to {target.location}: {rows}")
    print(
        f"verified: {copied.stats.papers} papers, {copied.stats.digests} sent digests, "
        f"{copied.stats.subscribers} subscribers on both sides"
    )
    print(f'next: set [digest] store = "{args.to}" (or $DIGEST_STORE_URL) on every host')
    return 0


def store_init(args: argparse.Namespace) -> int:
    config = load(args)
    location = store_location(config)
    if "://" not in location:
        path = config.resolve(location)
        if path.exists():
            raise UsageError(
                "a store is already there: `store init` never replaces one",
                where=str(path),
                hint="to start afresh on purpose, move the file away first",
            )
    with open_config_store(config) as store:
        stats = store.stats()
    print(f"made the store {store.location} (schema {stats.schema_version}, empty)")
    return 0
