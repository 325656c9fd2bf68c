"""Benchmark: digests to a local aiosmtpd server over 1 vs 4 SMTP connections, and the rate limit.

    .venv/bin/python bench/send.py [--messages 2000] [--latency-ms 5] [--rate 600]

The digests go the way a run sends them: ``digest.send.Sending`` (the run's dispatch, journal and
grouped store writes on a real SQLite store) over the configured SMTP channel, each a real
45 KiB digest; only rendering is left out (one rendered digest, addressed to each reader).
The server runs in its own process and, like any server not on this machine, takes a moment to
answer each message (``--latency-ms``, default 5 ms, spent asynchronously so other sessions go
on; 0 measures a server on the same host). Printed:

1. messages per second over 1 and over 4 connections, and the ratio (target >= 2.5x);
2. with ``max_per_minute = --rate`` on 4 connections, the most messages the server took in any
   10 s window against the limit's 10 s worth (target: within 5 %).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.config import subscriber_from
from digest.deliver import ChannelContext, MessageSettings
from digest.deliver.smtp import SmtpChannel, SmtpSettings
from digest.models import Rendered
from digest.send import Sending
from digest.store import PlannedDigest
from digest.store.journal import Journal
from digest.store.sqlite import SqliteStore
from tests.smtp_server import Handler, smtp_server

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "deliver"
NOW = dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC)


class SlowHandler(Handler):
    """Answers each DATA after ``latency`` seconds, as a remote server does, and notes when."""

    def __init__(self, latency: float) -> None:
        super().__init__()
        self.latency = latency
        self.accepted_at: list[float] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.latency:
            await asyncio.sleep(self.latency)
        self.accepted_at.append(time.time())
        return "250 Message accepted for delivery"


def serve(latency: float) -> None:
    """Child process: run the server, print its port; "stats" prints the count and clears it,
    "times" prints the acceptance times; EOF stops it."""
    handler = SlowHandler(latency)
    with smtp_server(handler) as server:
        print(server.port, flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                print(len(handler.accepted_at), server.connections, flush=True)
            elif command == "times":
                print(" ".join(f"{t:.6f}" for t in handler.accepted_at), flush=True)
            handler.accepted_at.clear()
            server.protocols.clear()


def send_all(port: int, count: int, folder: Path, **smtp: object) -> float:
    """Send ``count`` digests the way a run does; the seconds it took."""
    settings = SmtpSettings.model_validate(
        {"host": "127.0.0.1", "port": port, "security": "none", **smtp}
    )
    context = ChannelContext(message=MessageSettings(sender="Paper Digest <digest@example.org>"))
    html = (FIXTURES / "digest.html").read_text(encoding="utf-8")
    text = (FIXTURES / "digest.txt").read_text(encoding="utf-8")
    rendered = Rendered(subject="Daily Papers digest", html=html, text=text)
    readers = [subscriber_from({"email": f"reader{n}@example.org"}) for n in range(count)]
    store_path = folder / f"send-{time.monotonic_ns()}.db"
    with SqliteStore.open(store_path) as store, SmtpChannel.open(settings, context) as channel:
        run = store.begin_run(NOW)
        opened = store.plan_digests(
            run, NOW.date(), [PlannedDigest(r.email, (), ()) for r in readers], NOW
        )
        journal = Journal.open(store.journal_path, count)
        sending = Sending(store, channel, journal, run, NOW)
        started = time.perf_counter()
        for reader, digest in zip(readers, opened, strict=True):
            sending.send(reader, digest, lambda _: rendered, (), matched=0, day=NOW.date())
        sending.finish()
        elapsed = time.perf_counter() - started
    failed = [o for o in sending.outcomes if not o.sent]
    if failed:
        sys.exit(f"{len(failed)} digests failed: {failed[0].error}")
    return elapsed


def busiest_window(times: list[float], seconds: float) -> int:
    """The most acceptances inside any ``seconds``-long window."""
    best, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=600.0, help="max_per_minute to check")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.latency_ms / 1000)
        return
    # the server runs in its own process, as a real one would: in this process its thread
    # would fight the client for the GIL and distort both figures
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--latency-ms", str(args.latency_ms)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None and server.stdout is not None

    def ask(command: str) -> str:
        assert server.stdin is not None and server.stdout is not None
        server.stdin.write(command + "\n")
        server.stdin.flush()
        return server.stdout.readline()

    try:
        port = int(server.stdout.readline())
        print(f"{args.messages} digests, server answering each after {args.latency_ms:g} ms")
        with tempfile.TemporaryDirectory() as tmp:
            rates = {}
            for connections in (1, 4):
                elapsed = send_all(port, args.messages, Path(tmp), connections=connections)
                received, opened = map(int, ask("stats").split())
                assert received == args.messages, received
                rates[connections] = args.messages / elapsed
                print(
                    f"  {connections} connection(s): {rates[connections]:7.0f} msgs/s "
                    f"({elapsed:.2f} s, {opened} sessions)"
                )
            print(f"  4 vs 1: {rates[4] / rates[1]:.2f}x (target >= 2.5x)")

            per_window = args.rate / 6  # what the limit allows in 10 s
            count = int(per_window * 1.5)  # 15 s of sending at the limit
            send_all(port, count, Path(tmp), connections=4, max_per_minute=args.rate)
            times = sorted(map(float, ask("times").split()))
            busiest = busiest_window(times, 10.0)
            print(
                f"  max_per_minute = {args.rate:g} on 4 connections: at most {busiest} messages "
                f"in any 10 s (limit {per_window:.0f}: {busiest / per_window - 1:+.1%}, "
                "target within 5 %)"
            )
    finally:
        server.stdin.close()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
