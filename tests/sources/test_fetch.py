"""HTTP fetching: retries, backoff, Retry-After, fail-fast 4xx, timeouts, User-Agent."""

from __future__ import annotations

import socket

import httpx
import pytest

from digest import __version__
from digest.errors import FetchError
from digest.sources.fetch import MAX_RETRY_AFTER, USER_AGENT, get, make_client

from .conftest import LocalServer, Reply, fetch_section

URL = "https://example.test/api/daily_papers?date=2024-08-01"


class Scripted:
    """A MockTransport handler answering with ``outcomes`` in turn (the last one repeats)."""

    def __init__(self, *outcomes: int | Exception, headers: dict[str, str] | None = None) -> None:
        self.outcomes = list(outcomes)
        self.headers = headers or {}
        self.user_agents: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.user_agents.append(request.headers.get("User-Agent", ""))
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, Exception):
            raise outcome
        return httpx.Response(outcome, headers=self.headers, content=b"[]")

    @property
    def calls(self) -> int:
        return len(self.user_agents)


def mock_client(script: Scripted) -> httpx.Client:
    return make_client(transport=httpx.MockTransport(script))


def test_user_agent_names_the_tool_and_version() -> None:
    script = Scripted(200)
    assert get(mock_client(script), URL, retries=0, backoff=0) == b"[]"
    assert script.user_agents == [f"paper-digest/{__version__} (+https://github.com/paper-digest)"]
    assert script.user_agents[0] == USER_AGENT


def test_client_timeouts_come_from_the_config() -> None:
    fetch = fetch_section(timeout=7.5, connect_timeout=1.5)
    client = make_client(fetch.timeout, fetch.connect_timeout)
    assert client.timeout.read == 7.5
    assert client.timeout.connect == 1.5
    assert client.follow_redirects is False  # get() follows them itself, http(s) only


def test_backoff_is_exponential_with_jitter() -> None:
    sleeps: list[float] = []
    script = Scripted(503, 502, 500, 200)
    client = mock_client(script)
    body = get(client, URL, retries=3, backoff=1.0, sleep=sleeps.append, rng=lambda: 0.5)
    assert body == b"[]"
    assert sleeps == [1.5, 3.0, 6.0]
    assert script.calls == 4


def test_retry_after_seconds_is_honoured() -> None:
    sleeps: list[float] = []
    script = Scripted(429, 200, headers={"Retry-After": "7"})
    client = mock_client(script)
    get(client, URL, retries=2, backoff=0.1, sleep=sleeps.append, rng=lambda: 0.0)
    assert sleeps == [7.0]


def test_retry_after_is_capped() -> None:
    sleeps: list[float] = []
    script = Scripted(503, 200, headers={"Retry-After": "86400"})
    client = mock_client(script)
    get(client, URL, retries=1, backoff=0.1, sleep=sleeps.append, rng=lambda: 0.0)
    assert sleeps == [MAX_RETRY_AFTER]


def test_retry_after_http_date_falls_back_to_backoff() -> None:
    sleeps: list[float] = []
    script = Scripted(503, 200, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    client = mock_client(script)
    get(client, URL, retries=1, backoff=2.0, sleep=sleeps.append, rng=lambda: 0.0)
    assert sleeps == [2.0]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_other_client_errors_are_not_retried(status: int) -> None:
    sleeps: list[float] = []
    script = Scripted(status)
    client = mock_client(script)
    with pytest.raises(FetchError) as info:
        get(client, URL, retries=5, backoff=1.0, sleep=sleeps.append)
    assert script.calls == 1 and sleeps == []
    assert info.value.status == status
    assert info.value.where == URL
    assert str(info.value).startswith(f"{URL}: HTTP {status} ")


def test_giving_up_says_how_often_it_tried() -> None:
    script = Scripted(503)
    client = mock_client(script)
    with pytest.raises(FetchError) as info:
        get(client, URL, retries=2, backoff=0, sleep=lambda _: None)
    assert info.value.message == "HTTP 503 Service Unavailable (gave up after 3 attempts)"
    assert info.value.status == 503
    assert script.calls == 3


def test_connection_errors_are_retried_then_translated() -> None:
    request = httpx.Request("GET", URL)
    script = Scripted(httpx.ConnectError("connection refused", request=request))
    client = mock_client(script)
    with pytest.raises(FetchError, match="cannot connect: connection refused") as info:
        get(client, URL, retries=1, backoff=0, sleep=lambda _: None)
    assert script.calls == 2
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert info.value.hint


def test_an_unresolvable_host_fails_at_once() -> None:
    request = httpx.Request("GET", URL)
    unresolved = httpx.ConnectError("[Errno -2] Name or service not known", request=request)
    unresolved.__cause__ = socket.gaierror(-2, "Name or service not known")
    script = Scripted(unresolved)
    slept: list[float] = []
    with pytest.raises(FetchError, match="cannot resolve the host") as info:
        get(mock_client(script), URL, retries=3, backoff=1, sleep=slept.append)
    assert (script.calls, slept) == (1, [])
    assert info.value.hint is not None and "online" in info.value.hint


def test_connection_error_then_success() -> None:
    request = httpx.Request("GET", URL)
    script = Scripted(httpx.ReadTimeout("slow", request=request), 200)
    client = mock_client(script)
    assert get(client, URL, retries=1, backoff=0, sleep=lambda _: None) == b"[]"


# --- against a real local server ------------------------------------------------------------


def test_real_server_503_then_200_is_retried(server: LocalServer) -> None:
    server.script.replies["/p"] = [Reply(503), Reply(200, b"hello")]
    with make_client() as client:
        body = get(client, f"{server.url}/p", retries=2, backoff=1.0, sleep=lambda _: None)
    assert body == b"hello"
    assert server.paths() == ["/p", "/p"]
    assert server.script.requests[0][1]["User-Agent"] == USER_AGENT


def test_real_server_404_fails_fast(server: LocalServer) -> None:
    server.script.replies["/gone"] = [Reply(404)]
    with make_client() as client, pytest.raises(FetchError) as info:
        get(client, f"{server.url}/gone", retries=3, backoff=1.0, sleep=lambda _: None)
    assert server.paths() == ["/gone"]
    assert info.value.message == "HTTP 404 Not Found"
    assert info.value.hint is not None and "check the URL" in info.value.hint


def test_real_server_redirect_is_followed(server: LocalServer) -> None:
    server.script.replies["/old"] = [Reply(301, headers={"Location": "/new"})]
    server.script.replies["/new"] = [Reply(200, b"moved")]
    with make_client() as client:
        assert get(client, f"{server.url}/old", retries=0, backoff=0) == b"moved"


def test_real_server_that_hangs_times_out(server: LocalServer) -> None:
    server.script.replies["/slow"] = [Reply(hang=True)]
    fetch = fetch_section(timeout=0.3, connect_timeout=0.3, retries=0)
    with (
        make_client(fetch.timeout, fetch.connect_timeout) as client,
        pytest.raises(FetchError, match="timed out") as info,
    ):
        get(client, f"{server.url}/slow", retries=fetch.retries, backoff=0)
    assert info.value.where == f"{server.url}/slow"
    assert isinstance(info.value.__cause__, httpx.TimeoutException)
