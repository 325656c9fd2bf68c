"""The SMTP pool: sessions in parallel against a real aiosmtpd server, one rate limit, one
back-off, each message handed over once."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from digest.config import config_schema
from digest.deliver import ChannelContext
from digest.deliver.mail import MailChannel
from digest.deliver.smtp import SmtpChannel, SmtpTransport
from digest.deliver.smtp_pool import Backoff, RateLimit, SmtpPool
from digest.errors import ChannelUnavailableError
from tests.deliver.test_smtp import Sleeps, message_for, smtp_settings
from tests.smtp_server import Handler, free_port, smtp_server


class FakeTime:
    """A clock that only moves when something sleeps (thread-safe)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[tuple[str, float]] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append((threading.current_thread().name, seconds))
            self.now += seconds


def test_rate_limit_spaces_messages_evenly() -> None:
    time = FakeTime()
    limit = RateLimit(120, clock=time.clock, sleep=time.sleep)  # one every 0.5 s
    sent_at = []
    for _ in range(5):
        limit.wait()
        sent_at.append(time.now)
    assert sent_at == [100.0, 100.5, 101.0, 101.5, 102.0]


def test_rate_limit_gives_each_thread_its_own_slot() -> None:
    limit = RateLimit(6000)  # 10 ms apart, real clock
    with ThreadPoolExecutor(4) as pool:
        slots = sorted(pool.map(lambda _: limit.wait(), range(40)))
    # every wait took its own slot, none closer to the one before than the interval
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert min(gaps) >= limit.interval - 1e-9


def test_backoff_holds_everyone_until_the_longest_pause_ends() -> None:
    time = FakeTime()
    backoff = Backoff(clock=time.clock, sleep=time.sleep)
    backoff.wait()
    assert time.sleeps == []
    backoff.pause(4)
    backoff.pause(2)  # a shorter pause does not cut the longer one short
    backoff.wait()
    assert time.now == 104.0
    backoff.wait()
    assert len(time.sleeps) == 1


def _pool(port: int, connections: int, backoff: Backoff | None = None) -> SmtpPool:
    settings = smtp_settings(port, retries=1)
    return SmtpPool(
        [
            SmtpTransport(settings, sleep=Sleeps(), first_delay=0.01, backoff=backoff)
            for _ in range(connections)
        ],
        backoff=backoff,
    )


def test_many_threads_each_message_once_over_all_connections() -> None:
    handler = Handler()
    addresses = [f"reader{n}@example.org" for n in range(40)]
    with smtp_server(handler) as server, _pool(server.port, 4) as pool:
        with ThreadPoolExecutor(8) as threads:
            list(threads.map(lambda a: pool.send(message_for(a)), addresses))
        assert pool.connections == 4
        assert server.connections == 4
    assert Counter(r.rcpt_tos[0] for r in handler.received) == Counter(addresses)


def test_a_4xx_on_one_session_pauses_the_others() -> None:
    time = FakeTime()
    backoff = Backoff(clock=time.clock, sleep=time.sleep)
    handler = Handler(rcpt_answers={"busy@example.org": ["451 4.7.0 slow down"]})
    with smtp_server(handler) as server, _pool(server.port, 2, backoff) as pool:
        pool.send(message_for("busy@example.org"))  # 451, paused, retried, accepted
        assert len(time.sleeps) == 1
        paused_by = time.sleeps[0][1]
        # the pause is the pool's: a send on the other session waits while it is in force
        backoff.pause(3)
        waiter = threading.Thread(
            target=pool.send, args=(message_for("other@example.org"),), name="other"
        )
        waiter.start()
        waiter.join(10)
    assert paused_by == pytest.approx(0.01)
    assert ("other", 3.0) in time.sleeps
    assert sorted(r.rcpt_tos[0] for r in handler.received) == [
        "busy@example.org",
        "other@example.org",
    ]


def test_an_unreachable_server_stops_the_whole_pool() -> None:
    with _pool(free_port(), 3) as pool:
        with pytest.raises(ChannelUnavailableError, match=r"127\.0\.0\.1"):
            pool.send(message_for("first@example.org"))
        with pytest.raises(ChannelUnavailableError, match="not tried"):
            pool.send(message_for("second@example.org"))  # another session: not tried either
        assert pool.connections == 0


@pytest.mark.parametrize(
    ("options", "parallel", "pooled"),
    [({}, 1, False), ({"connections": 4}, 4, True), ({"max_per_minute": 600}, 1, True)],
)
def test_the_channel_is_pooled_only_when_asked(
    options: dict[str, object], parallel: int, pooled: bool
) -> None:
    settings = smtp_settings(2525, **options)
    channel = SmtpChannel.open(settings, ChannelContext())
    assert isinstance(channel, MailChannel)
    assert channel.parallel == parallel
    assert isinstance(channel.transport, SmtpPool) is pooled
    channel.close()


@pytest.mark.parametrize("value", [0, 17])
def test_connections_out_of_range_is_a_config_error(value: int) -> None:
    schema = config_schema()
    data = {
        "delivery": {"method": "smtp", "smtp": {"host": "mail.example.org", "connections": value}},
        "subscribers": [{"email": "a@example.org"}],
    }
    with pytest.raises(Exception, match="connections"):
        schema.model_validate(data)
