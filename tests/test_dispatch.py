"""Several `digest run` processes on one PostgreSQL store, sending to a real aiosmtpd server:
every subscriber exactly once, a second round sends nothing, and a worker killed mid-send is
taken over when its lease runs out, duplicating at most what it had in flight."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.dispatch import dead_here, worker_name
from digest.store import PlannedDigest, open_store
from tests.smtp_server import CountingController, Handler, smtp_server

PAGES = Path(__file__).resolve().parent / "fixtures" / "samples" / "text-pages"
READERS = 3000


def write_config(folder: Path, smtp_port: int, readers: int = READERS) -> Path:
    shutil.copytree(PAGES, folder / "pages", dirs_exist_ok=True)
    lines = [
        "[digest]\nclaim_lease = 3\n",
        '[[sources]]\nkind = "page"\npath = "pages/*.txt"\n',
        '[delivery]\nmethod = "smtp"\nfrom = "Digest <digest@example.org>"\n',
        f'[delivery.smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
        "retries = 1\ntimeout = 20\n",
    ]
    words = ["model", "language", "learning", "data"]
    for n in range(readers):
        lines.append(
            f'[[subscribers]]\nemail = "reader{n}@example.org"\n'
            f'keywords = ["{words[n % len(words)]}"]\nmax_papers = 2\n'
        )
    config = folder / "digest.toml"
    config.write_text("".join(lines))
    return config


def start(config: Path, store_url: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    env["DIGEST_STORE_URL"] = store_url
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(config), "run"],
        cwd=config.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=600)
    return process.returncode, out, err


@pytest.fixture
def server() -> Iterator[tuple[CountingController, Handler]]:
    handler = Handler()
    with smtp_server(handler) as controller:
        yield controller, handler


def per_reader(handler: Handler) -> Counter[str]:
    return Counter(r.rcpt_tos[0] for r in handler.received)


def test_three_workers_send_everyone_exactly_once(
    tmp_path: Path, pg_url: str, server: tuple[CountingController, Handler]
) -> None:
    controller, handler = server
    readers = READERS - 50  # not whole claims of 100: one worker's last group is short
    config = write_config(tmp_path, controller.port, readers)
    workers = [start(config, pg_url) for _ in range(3)]
    results = [finish(worker) for worker in workers]
    assert all(code == 0 for code, _, _ in results), [err[-2000:] for _, _, err in results]
    counts = per_reader(handler)
    assert len(counts) == readers and set(counts.values()) == {1}
    # one of them planned; every one sent a share
    planners = [out for _, out, _ in results if "distinct papers" in out]
    assert len(planners) >= 1
    sent = [int(out.rsplit("sent ", 1)[1].split()[0]) for _, out, _ in results]
    assert sum(sent) == readers and all(share > 0 for share in sent), sent
    # the digests a worker rebuilt from another's plan are the ones the planner made: readers
    # of the same interests got the same text, whichever worker sent it
    texts: dict[int, set[str]] = {}
    for received in handler.received:
        reader = received.rcpt_tos[0]
        number = int(reader.removeprefix("reader").split("@")[0])
        body = received.message.get_body(("plain",))
        assert body is not None
        words = str(body.get_content()).replace(reader, "READER").split()  # wrapped by length
        texts.setdefault(number % 4, set()).add(" ".join(words))
    assert sorted(len(found) for found in texts.values()) == [1, 1, 1, 1]
    # and each paper's sent count (kept back by each worker, added at the end of its run) is
    # what the readers received
    with open_store(pg_url, base_dir=tmp_path, readonly=True) as store:
        received_papers = sum(s.papers_received for s in store.subscriber_states().values())
        assert received_papers > readers
        assert sum(row.sent for row in store.list_seen()) == received_papers

    # a second round finds the work done and sends nothing
    again = [finish(worker) for worker in [start(config, pg_url) for _ in range(3)]]
    assert all(code == 0 for code, _, _ in again)
    assert len(handler.received) == readers


def local_ports(pid: int) -> set[int]:
    """The local TCP ports of the sockets process ``pid`` holds open (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_a_worker_killed_mid_send_is_taken_over_after_its_lease(
    tmp_path: Path, pg_url: str, server: tuple[CountingController, Handler]
) -> None:
    controller, handler = server
    config = write_config(tmp_path, controller.port)
    workers = [start(config, pg_url) for _ in range(3)]
    victim = workers[0]
    killed = threading.Event()
    victim_ports: set[int] = set()

    def kill_mid_send(number: int) -> None:
        if number == 600 and not killed.is_set():
            victim_ports.update(local_ports(victim.pid))
            os.kill(victim.pid, signal.SIGKILL)
            killed.set()

    handler.after_accept = kill_mid_send
    results = [finish(worker) for worker in workers]
    assert killed.is_set() and results[0][0] == -signal.SIGKILL
    # the two others finished everything, the dead one's claims once its lease ran out
    assert all(code == 0 for code, _, _ in results[1:]), [err[-2000:] for _, _, err in results]
    counts = per_reader(handler)
    assert len(counts) == READERS  # nobody missed their digest
    twice = [reader for reader, count in counts.items() if count > 1]
    assert all(count <= 2 for count in counts.values())
    # Only what the killed worker had in flight: sent on its connection, accepted by the server,
    # never recorded. The server may accept that message after the kill (its last bytes were
    # already in the socket's buffer), so "in flight" is judged by the connection it came on,
    # not by what the server had accepted at the moment of the kill.
    from_victim = {r.rcpt_tos[0] for r in handler.received if r.peer[1] in victim_ports}
    assert victim_ports and set(twice) <= from_victim and len(twice) <= 1, twice
    # and the next run has nothing left to do
    code, out, _ = finish(start(config, pg_url))
    assert code == 0 and len(handler.received) == READERS + len(twice), out


def test_claims_of_a_worker_on_another_host_wait_for_their_lease(
    tmp_path: Path, pg_url: str, server: tuple[CountingController, Handler]
) -> None:
    controller, handler = server
    config = write_config(tmp_path, controller.port, readers=30)
    code, _, err = finish(start(config, pg_url))
    assert code == 0, err
    sent_first = len(handler.received)
    # a plan whose digests a worker on another host claimed, then went silent
    with open_store(pg_url, base_dir=tmp_path) as store:
        run = store.begin_run(dt.datetime.now(dt.UTC))
        key = store.recent_papers(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))[0].key
        today = dt.datetime.now(dt.UTC)
        store.plan_digests(
            run, today.date(), [PlannedDigest("reader1@example.org", (key,), (), 1, 1)], today
        )
        claimed = store.claim_digests("elsewhere:4242:abcdef", 10, today, dt.timedelta(seconds=3))
        assert len(claimed) == 1
    started = dt.datetime.now(dt.UTC)
    code, out, err = finish(start(config, pg_url))
    assert code == 0, err
    assert (dt.datetime.now(dt.UTC) - started).total_seconds() >= 2  # it waited for the lease
    assert len(handler.received) == sent_first + 1
    assert handler.received[-1].rcpt_tos == ["reader1@example.org"]
    assert "sending the digests another run planned" in out


def test_a_dead_worker_of_this_host_is_recognised() -> None:
    assert not dead_here(worker_name())  # this very process
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert dead_here(f"{socket.gethostname()}:{gone.stdout.strip()}:abc")
    assert not dead_here(f"another-host:{gone.stdout.strip()}:abc")
    assert not dead_here("garbage")
