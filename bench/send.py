"""Benchmark: N digests to a local aiosmtpd server, one reused connection vs one per message.

    .venv/bin/python bench/send.py [--messages 2000] [--security none|starttls]

Prints messages per second for both ways. ``starttls`` uses a throw-away trustme CA, so it
shows what the TLS handshake per connection costs on top of the TCP and EHLO round trips.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ssl
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trustme

from digest.config import DeliverySection, SmtpSection, SubscriberSection
from digest.deliver import SmtpTransport, build_message
from digest.models import Rendered
from tests.smtp_server import Handler, smtp_server

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "deliver"


def messages(count: int) -> list[EmailMessage]:
    delivery = DeliverySection.model_validate({"from": "Paper Digest <digest@example.org>"})
    rendered = Rendered(
        subject="Daily Papers digest",
        html=(FIXTURES / "digest.html").read_text(encoding="utf-8"),
        text=(FIXTURES / "digest.txt").read_text(encoding="utf-8"),
    )
    now = dt.datetime.now(dt.UTC)
    return [
        build_message(
            rendered,
            SubscriberSection.model_validate({"email": f"reader{i}@example.org", "name": "R"}),
            delivery,
            title="Daily Papers digest",
            now=now,
        )
        for i in range(count)
    ]


def serve(security: str, ca_file: str) -> None:
    """Child process: run the server, print its port, answer "stats" with counts, stop on EOF."""
    handler = Handler()
    tls_kwargs = {}
    if security == "starttls":
        ca = trustme.CA()
        ca.cert_pem.write_to_path(ca_file)
        server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(server_tls)
        tls_kwargs["tls_context"] = server_tls
    with smtp_server(handler, **tls_kwargs) as server:
        print(server.port, flush=True)
        for line in sys.stdin:
            if line.strip() == "stats":
                print(len(handler.received), server.connections, flush=True)
                handler.received.clear()
                server.protocols.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--security", choices=["none", "starttls"], default="none")
    parser.add_argument("--serve", metavar="CA_FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.security, args.serve)
        return
    folder = tempfile.TemporaryDirectory()
    ca_file = str(Path(folder.name) / "ca.pem")

    # the server runs in its own process, as a real one would: in this process its thread
    # would fight the client for the GIL and halve both figures
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", ca_file, "--security", args.security],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    try:
        port = int(server.stdout.readline())
        client_tls = ssl.create_default_context()
        if args.security == "starttls":
            client_tls.load_verify_locations(ca_file)
        settings = SmtpSection.model_validate(
            {"host": "127.0.0.1", "port": port, "security": args.security}
        )
        batch = messages(args.messages)
        size = len(batch[0].as_bytes())
        print(f"{args.messages} messages of {size:,} bytes, security={args.security}")
        for label, reuse in (
            ("one reused connection", True),
            ("new connection per message", False),
        ):
            start = time.perf_counter()
            if reuse:
                with SmtpTransport(settings, ssl_context=client_tls) as transport:
                    for message in batch:
                        transport.send(message)
            else:
                for message in batch:
                    with SmtpTransport(settings, ssl_context=client_tls) as transport:
                        transport.send(message)
            elapsed = time.perf_counter() - start
            server.stdin.write("stats\n")
            server.stdin.flush()
            received, connections = map(int, server.stdout.readline().split())
            assert received == args.messages, received
            print(
                f"  {label:28s} {args.messages / elapsed:8.0f} msgs/s "
                f"({elapsed:.2f} s, {connections} connections)"
            )
    finally:
        server.stdin.close()
        server.wait(timeout=30)
        folder.cleanup()


if __name__ == "__main__":
    main()
