"""``Digest``: the library core, one configuration with the lifetimes of its store, lock, HTTP
client and channel, and what can be done with them (run, preview, fetch, check, serve).

The command line, the daemon, the benches and the tests are thin users of it::

    from digest import Digest, load_config

    digest = Digest(load_config("digest.toml"))
    report = digest.run(dry_run=True)        # what a run would send, changing nothing
    print("\\n".join(report.summary()))

Everything from outside is injected: the clock (``clock``), the HTTP transport of sources and
webhooks (``http``: an ``httpx.MockTransport`` in a test), the environment secrets are read from
(``env``). Each call opens what it needs and closes it before returning, so a ``Digest`` can be
kept (the daemon keeps one per run) and used again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digest.config import Config, store_location
from digest.deliver import utc_now

if TYPE_CHECKING:
    import httpx

    from digest.check import CheckReport
    from digest.models import Batch
    from digest.pipeline import PreviewResult, Progress
    from digest.report import RunReport
    from digest.settings import SourceSettings
    from digest.sources import FetchWatcher
    from digest.store import Store


class Digest:
    """One configuration, ready to run."""

    def __init__(
        self,
        config: Config,
        *,
        env: Mapping[str, str] = os.environ,
        clock: Callable[[], dt.datetime] = utc_now,
        http: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self.env = env
        self.clock = clock
        self.http = http

    def today(self) -> dt.date:
        """Today in ``[digest] timezone``: the day a run without ``day`` is for."""
        import zoneinfo

        return self.clock().astimezone(zoneinfo.ZoneInfo(self.config.digest.timezone)).date()

    def open_store(self, *, readonly: bool = False) -> Store:
        """The configured store (``$DIGEST_STORE_URL`` first), opened; the caller closes it."""
        from digest.store import open_store

        location = store_location(self.config, self.env)
        return open_store(location, base_dir=self.config.base_dir, readonly=readonly)

    def run(
        self,
        *,
        day: dt.date | None = None,
        dry_run: bool = False,
        only: str | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        progress: Progress | None = None,
        watcher: FetchWatcher | None = None,
    ) -> RunReport:
        """One `digest run`: the store under its run lock (none for a dry run), the HTTP client
        and the channel opened for it and closed after; ``dry_run`` sends and changes nothing."""
        from digest import pipeline
        from digest.stage_settings import open_configured_channel

        with contextlib.ExitStack() as stack:
            store = stack.enter_context(self.open_store(readonly=dry_run))
            if not dry_run:
                stack.enter_context(store.run_lock())
            client = stack.enter_context(self._client())
            channel = None
            if not dry_run:
                channel = stack.enter_context(
                    open_configured_channel(self.config, env=self.env, http=self.http)
                )
            return pipeline.run(
                self.config,
                client=client,
                store=store,
                channel=channel,
                now=self.clock(),
                day=day or self.today(),
                dry_run=dry_run,
                only=only,
                should_stop=should_stop,
                progress=progress,
                watcher=watcher,
            )
        raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow

    def preview(
        self,
        out_dir: Path,
        *,
        day: dt.date | None = None,
        only: str | None = None,
        watcher: FetchWatcher | None = None,
    ) -> PreviewResult:
        """Every due subscriber's email rendered into ``out_dir``; sends and changes nothing."""
        from digest import pipeline

        with self.open_store(readonly=True) as store, self._client() as client:
            return pipeline.preview(
                self.config,
                client=client,
                store=store,
                now=self.clock(),
                day=day or self.today(),
                out_dir=out_dir,
                only=only,
                watcher=watcher,
            )

    def fetch(
        self,
        *,
        day: dt.date | None = None,
        sources: Sequence[SourceSettings] | None = None,
        watcher: FetchWatcher | None = None,
    ) -> Batch:
        """The configured sources (or ``sources``) read and de-duplicated; changes nothing."""
        from digest import pipeline

        with self._client() as client:
            return pipeline.collect(
                self.config, client=client, day=day or self.today(), sources=sources,
                watcher=watcher,
            )  # fmt: skip

    def check(self, *, sources: bool = False, smtp: bool = False) -> CheckReport:
        """What ``digest check`` finds beyond the schema, the store read without changing it;
        with ``sources``, what each ``hf-api`` source answers, with ``smtp``, what the mail
        server answers (a session opened and quit). Raises what blocks a run."""
        from digest.check import check_api_sources, check_config, check_smtp

        report = check_config(
            self.config, open_store=lambda: self.open_store(readonly=True), env=self.env
        )
        if sources:
            with self._client() as client:
                report.lines += check_api_sources(self.config, client)
        if smtp:
            report.lines += check_smtp(self.config)
        return report

    def app(self) -> Any:
        """The ASGI app of ``digest serve`` (the readers' pages), to mount in a server of your
        own; needs the ``serve`` extra and ``[server] base_url``."""
        from digest.server import service_for
        from digest.server.app import make_app

        return make_app(service_for(self.config, env=self.env, clock=self.clock))

    def serve(self, *, host: str | None = None, port: int | None = None) -> None:
        """Serve the readers' pages on ``host:port`` (default ``[server]``'s) until stopped."""
        from digest.server import serve_forever

        server = self.config.server
        serve_forever(self.config, host=host or server.host, port=port or server.port, env=self.env)

    def _client(self) -> httpx.Client:
        from digest.sources.fetch import make_client

        fetch = self.config.fetch
        return make_client(fetch.timeout, fetch.connect_timeout, transport=self.http)
