"""`digest serve` as a process, driven over HTTP with links taken from messages a run wrote:
RFC 8058 one-click, GET that changes nothing, forged and cross-subscriber tokens, the buttons."""

from __future__ import annotations

import hashlib
import re
import socket
from pathlib import Path

import httpx

from tests.server.conftest import Site


def digest_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_messages_carry_the_one_click_headers_and_the_footer_link(site: Site) -> None:
    for address, message in site.messages().items():
        url = site.unsubscribe_url(address)
        assert url.startswith(f"http://127.0.0.1:{site.port}/u/")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        html = message.get_body(("html",))
        text = message.get_body(("plain",))
        assert html is not None and text is not None
        assert f'href="{url}"' in html.get_content()
        assert f"Unsubscribe: {url}" in text.get_content()
        # the footer names no way that does not exist
        assert "reply with" not in text.get_content()


def test_the_one_click_post_from_the_message_headers_unsubscribes(served: Site) -> None:
    message = served.messages()["ada@example.org"]
    url = served.unsubscribe_url("ada@example.org")
    body = str(message["List-Unsubscribe-Post"])  # exactly what RFC 8058 says to POST
    with httpx.Client() as client:  # a fresh client: no cookies
        reply = client.post(
            url, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert not client.cookies
    assert reply.status_code == 200
    assert "set-cookie" not in reply.headers
    assert served.statuses() == {
        "ada@example.org": "unsubscribed",
        "bob@example.org": "active",
        "cy@example.org": "active",
    }
    # the next run skips ada and nobody else
    done = served.digest("run", "--date", "2026-11-24", "-v")
    assert done.returncode == 0, done.stderr
    lines = {line.split(":")[0].strip(): line for line in done.stdout.splitlines() if "@" in line}
    assert "unsubscribed" in lines["ada@example.org"] and "one-click" in lines["ada@example.org"]
    assert "unsubscribed" not in lines["bob@example.org"] + lines["cy@example.org"]
    assert "skipped: 1 unsubscribed" in done.stdout


def test_get_alone_changes_nothing(served: Site) -> None:
    store = served.folder / "digest.db"
    before = digest_of(store)
    url = served.unsubscribe_url("bob@example.org")
    for _ in range(3):  # a link scanner, a preview pane, the reader
        page = httpx.get(url)
        assert page.status_code == 200
        assert "bob@example.org" in page.text and "embedding" in page.text
        assert re.search(r'<button type="submit">Unsubscribe</button>', page.text)
    assert digest_of(store) == before
    assert set(served.statuses().values()) == {"active"}


def test_forged_and_cross_subscriber_tokens_get_403_and_change_nothing(served: Site) -> None:
    ada = served.unsubscribe_url("ada@example.org")
    bob = served.unsubscribe_url("bob@example.org")
    base, ada_token = ada.rsplit("/", 1)
    bob_token = bob.rsplit("/", 1)[1]
    crossed = f"{base}/{bob_token.split('.')[0]}.{ada_token.split('.')[1]}"
    forged = [crossed, f"{base}/{ada_token[:-2]}xy", f"{base}/not-a-token", f"{base}/x.y"]
    for url in forged:
        assert httpx.get(url).status_code == 403
        reply = httpx.post(url, data={"List-Unsubscribe": "One-Click"})
        assert reply.status_code == 403
        assert "nothing was changed" in reply.text
    assert set(served.statuses().values()) == {"active"}


def test_the_button_unsubscribes_and_the_confirmation_resubscribes(served: Site) -> None:
    url = served.unsubscribe_url("cy@example.org")
    done = httpx.post(url, data={"action": "unsubscribe"})
    assert done.status_code == 200
    assert "You are unsubscribed" in done.text and "Subscribe again" in done.text
    assert served.statuses()["cy@example.org"] == "unsubscribed"
    assert "Subscribe again" in httpx.get(url).text  # the link still works, and says so
    back = httpx.post(url, data={"action": "resubscribe"})
    assert back.status_code == 200 and "Welcome back" in back.text
    assert served.statuses()["cy@example.org"] == "active"


def test_requests_that_are_not_ours_get_400(served: Site) -> None:
    url = served.unsubscribe_url("ada@example.org")
    assert httpx.post(url, data={"action": "delete-everything"}).status_code == 400
    assert httpx.post(url, content=b"x" * 10_000).status_code == 413
    assert set(served.statuses().values()) == {"active"}


def test_pages_are_locked_down_and_escape_what_they_show(served: Site) -> None:
    page = httpx.get(served.unsubscribe_url("ada@example.org"))
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert '<meta name="viewport"' in page.text  # readable on a phone
    assert "<script" not in page.text


def test_serve_without_its_secret_is_a_one_line_config_error(site: Site) -> None:
    env = {k: v for k, v in site.env.items() if k != "DIGEST_SERVER_SECRET"}
    done = site.digest("serve", env=env)
    assert done.returncode == 2
    assert "$DIGEST_SERVER_SECRET is not set" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_run_without_the_links_secret_stops_before_sending(tmp_path: Path) -> None:
    from tests.server.conftest import make_site

    site = make_site(tmp_path)
    env = {k: v for k, v in site.env.items() if k != "DIGEST_SERVER_SECRET"}
    done = site.digest("run", env=env)
    assert done.returncode == 2, done.stdout
    assert "$DIGEST_SERVER_SECRET is not set: it signs the unsubscribe links" in done.stderr
    assert "secrets.token_urlsafe" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "outbox").exists()


def test_every_answer_carries_the_security_headers(served: Site) -> None:
    base = f"http://127.0.0.1:{served.port}"
    for answer in (
        httpx.get(f"{base}/no/such/page"),  # Starlette's own 404
        httpx.put(f"{base}/u/x.y"),  # and 405
        httpx.get(f"{base}/healthz"),
    ):
        assert answer.headers["x-content-type-options"] == "nosniff", answer.status_code
        assert answer.headers["cache-control"] == "no-store", answer.status_code


def test_a_large_body_is_refused_by_its_declared_length_before_it_is_read(served: Site) -> None:
    url = served.unsubscribe_url("ada@example.org")
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as conn:
        path = url.split(str(served.port), 1)[1]
        conn.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
            f"\r\nContent-Length: {300 * 1024 * 1024}\r\n\r\n".encode()
        )  # the 300 MB are never sent: the answer comes first
        answer = conn.recv(4096).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert served.statuses()["ada@example.org"] == "active"


def test_a_genuine_token_has_one_spelling(served: Site) -> None:
    url = served.unsubscribe_url("ada@example.org")
    token = url.rsplit("/", 1)[1]
    address, tag = token.split(".")
    spellings = [
        f"{address}=.{tag}",  # padding
        f"{address}.{tag}==",
        f"{address.upper()}.{tag}" if address != address.upper() else f"{address}.{tag}X",
        token.replace("-", "+").replace("_", "/") if "-" in token or "_" in token else token + "A",
    ]
    for spelling in spellings:
        answer = httpx.post(url.replace(token, spelling), data={"List-Unsubscribe": "One-Click"})
        assert answer.status_code in (403, 404), (spelling, answer.status_code)
    assert served.statuses()["ada@example.org"] == "active"
