"""Benchmark: one run's digests sent by 1, 2 and 4 `digest run` workers sharing a PostgreSQL store.

    .venv/bin/python bench/workers.py [--subscribers 10000] [--papers 60] [--latency-ms 5]

Starts a throwaway PostgreSQL cluster (Debian's ``postgresql`` package, as the tests do) with
its default durability (``fsync`` on: SQLite syncs too, so both pay for a durable ledger) and a
real SMTP server (a minimal relay in a thread of this process: :class:`Relay`) that answers
each message after ``--latency-ms``, as a relay across a network would. The baseline, measured
in the same session, is the same run on the default SQLite store with one sender. Then, for
each number of workers: a fresh database, the same config (``--subscribers`` readers, SMTP
delivery, one connection each), the workers started together and timed until the last exits.

Checked from the SMTP server's log, not from files (a digest sent twice would overwrite its
file): every reader a sender wrote to got exactly one message, and the same readers as SQLite's.
Printed: wall time, messages per second, the CPU all processes used, one PostgreSQL worker
against one SQLite sender (target <= 1.3x) and 4 workers against 1 (target >= 3x).

Left out: TLS and authentication (the relay is local), network round trips to PostgreSQL (a
Unix socket). The relay's CPU (this process) and PostgreSQL's are not in the workers' CPU, but
they share the machine: the "machine busy" figure counts everything.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import write_setup

from tests.postgres_cluster import running_cluster
from tests.smtp_server import free_port


class Relay:
    """A minimal SMTP relay on 127.0.0.1, in a thread of this process: it answers each message
    after ``latency`` seconds (other sessions go on meanwhile) and counts the messages each
    recipient got. It reads a message whole rather than line by line (aiosmtpd, which the tests
    use, spends 2 ms of Python a message here: on two CPUs, time taken from the workers)."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.delivered: collections.Counter[str] = collections.Counter()
        self.port = free_port()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        threading.Thread(target=self._serve, daemon=True).start()
        assert self._ready.wait(10), "the relay did not start"

    def _serve(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            server = await asyncio.start_server(self._session, "127.0.0.1", self.port,
                                                limit=2**26)  # fmt: skip
            self._ready.set()
            async with server:
                await server.serve_forever()

        asyncio.run(main())

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 relay ESMTP\r\n")
        recipients: list[str] = []
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(b"250-relay\r\n250 8BITMIME\r\n")
            elif verb == b"MAIL":
                recipients = []
                writer.write(b"250 OK\r\n")
            elif verb == b"RCPT":
                recipients.append(line.split(b"<", 1)[1].split(b">", 1)[0].decode())
                writer.write(b"250 OK\r\n")
            elif verb == b"DATA":
                writer.write(b"354 end with <CRLF>.<CRLF>\r\n")
                await writer.drain()
                await reader.readuntil(b"\r\n.\r\n")
                await asyncio.sleep(self.latency)
                self.delivered.update(recipients)
                writer.write(b"250 accepted\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:  # HELO, RSET, NOOP
                writer.write(b"250 OK\r\n")
            await writer.drain()
        writer.close()


def smtp_config(config: Path, port: int) -> None:
    """Point ``config``'s delivery at the local relay."""
    file_delivery = (
        '[delivery]\nmethod = "file"\noutbox = "outbox"\nfrom = "Digest <digest@example.org>"\n'
    )
    text = config.read_text()
    assert file_delivery in text
    config.write_text(
        text.replace(
            file_delivery,
            '[delivery]\nmethod = "smtp"\nfrom = "Digest <digest@example.org>"\n'
            f'[delivery.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n',
        )
    )


def machine_busy() -> tuple[float, float]:
    """The machine's busy and total CPU time so far (seconds, all CPUs: ``/proc/stat``)."""
    fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tick, sum(fields) / tick


def run_workers(folder: Path, config: Path, workers: int, store: str | None) -> tuple[float, float]:
    """Wall seconds until every worker exited, and the CPU seconds they used in all."""
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    if store:
        env["DIGEST_STORE_URL"] = store
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "digest", "--config", str(config), "-q", "run"],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(workers)
    ]
    cpu = 0.0
    for process in processes:
        _, status, usage = os.wait4(process.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            assert process.stderr is not None
            sys.exit(f"a worker failed: {process.stderr.read().decode()[-2000:]}")
        cpu += usage.ru_utime + usage.ru_stime
    return time.perf_counter() - started, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--papers", type=int, default=60)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    args = parser.parse_args()
    print(f"{args.subscribers} subscribers x {args.papers} papers, SMTP answering after "
          f"{args.latency_ms:g} ms, fsync on for both stores; {os.cpu_count()} CPUs")  # fmt: skip
    print(
        "left out: TLS and authentication (the relay is local), network round trips to "
        "PostgreSQL (a Unix socket); the relay's and PostgreSQL's CPU are not the workers' "
        "but share the machine"
    )
    relay = Relay(args.latency_ms / 1000)
    with tempfile.TemporaryDirectory() as tmp, running_cluster(durable=True) as cluster:
        base = Path(tmp)
        results: dict[str, float] = {}
        expected: set[str] | None = None  # the readers the SQLite run wrote to
        for label, workers, store in [
            ("sqlite, 1 sender", 1, None),
            *((f"postgresql, {n} workers", n, "pg") for n in (1, 2, 4)),
        ]:
            folder = base / label.replace(", ", "-").replace(" ", "")
            folder.mkdir()
            config = write_setup(folder, args.subscribers, args.papers)
            smtp_config(config, relay.port)
            url = cluster.new_database() if store else None
            relay.delivered.clear()
            busy_before, total_before = machine_busy()
            relay_before = time.process_time()  # this process: the relay's thread, mostly
            wall, cpu = run_workers(folder, config, workers, url)
            relay_cpu = time.process_time() - relay_before
            busy_after, total_after = machine_busy()
            busy = (busy_after - busy_before) / (total_after - total_before)
            counts = relay.delivered
            twice = sorted(r for r, n in counts.items() if n > 1)
            readers = set(counts)
            expected = readers if expected is None else expected
            if twice or readers != expected:
                sys.exit(f"{label}: {len(twice)} readers got two messages ({twice[:3]}), "
                         f"{len(expected - readers)} none")  # fmt: skip
            results[label] = wall
            results[f"{label} cpu"] = cpu
            sent = sum(counts.values())
            print(f"  {label:24} {wall:6.1f} s wall, {sent / wall:5.0f} msgs/s, CPU {cpu:6.1f} s "
                  f"(relay {relay_cpu:.1f} s; machine {busy:.0%} busy); {sent} "
                  "messages, each reader's once by the server's log")  # fmt: skip
            shutil.rmtree(folder)
        one = results["postgresql, 1 workers"]
        cpu_ratio = results["postgresql, 1 workers cpu"] / results["sqlite, 1 sender cpu"]
        print(f"  one PostgreSQL worker / one SQLite sender: "
              f"{one / results['sqlite, 1 sender']:.2f}x wall (target <= 1.3), "
              f"CPU {cpu_ratio:.2f}x")  # fmt: skip
        for n in (2, 4):
            wall = results[f"postgresql, {n} workers"]
            target = " (target >= 3)" if n == 4 else ""
            print(f"  {n} workers vs 1: {one / wall:.2f}x wall{target}")


if __name__ == "__main__":
    main()
