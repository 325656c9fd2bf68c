"""``method = "webhook"``: each digest POSTed as JSON to a chat or notification endpoint.

``[delivery.webhook]`` names the ``url`` (a subscriber's own ``webhook`` key overrides it for
them) and the ``body`` shape: ``"json"`` (the digest's papers, links and why-lines, below),
``"slack"`` (``{"text": ...}``, also Mattermost and Matrix hookshot), ``"discord"``
(``{"content": ...}``), ``"ntfy"`` (the text itself, as ntfy.sh takes it), or a Jinja template file
that writes the body (``template = "slack-blocks.json.j2"``) to meet any other service's shape.
A secret token, when the endpoint wants one, is read from the environment variable ``token_env``
names and sent as ``Authorization: Bearer ...``; it never sits in the file.

The ledger's promises hold as for mail: ``send`` returns only after the endpoint answered 2xx, and
a failure says whose fault it is. A 429, a 5xx, a timeout or a dropped connection is temporary
(the digest stays owed for the next run); a 404 or 410 from the shared endpoint means it is gone
(:class:`ChannelUnavailableError`: sending stops, nobody is suspended), from a subscriber's own
endpoint that the subscriber's address is gone (:class:`RecipientRefusedError`); any other 4xx
is this message refused. The HTTP transport comes from the :class:`ChannelContext`, so tests (and
proxies) inject their own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator

from digest.deliver import Channel, ChannelContext, Closing, MessageSettings, Outgoing
from digest.errors import (
    ChannelUnavailableError,
    ConfigError,
    MessageRefusedError,
    RecipientRefusedError,
    TemporaryDeliveryError,
)
from digest.settings import ChannelOption, LocalPath, Section, http_url
from digest.untrusted import clean_text, safe_url

if TYPE_CHECKING:
    import httpx

GONE = (404, 410)
TEXT_LIMITS = {"discord": 2000, "slack": 39_000, "ntfy": 4096}  # what each service takes


class WebhookSettings(Section):
    """``[delivery.webhook]``: where digests are POSTed and in which shape."""

    url: str
    body: Literal["json", "slack", "discord", "ntfy"] = "json"
    template: LocalPath | None = None  # a Jinja template of the body, instead of ``body``
    content_type: str = "application/json"  # for a template's output
    token_env: str | None = None  # the variable holding a bearer token, if the endpoint wants one
    timeout: float = Field(15.0, gt=0, strict=True)

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str) -> str:
        checked = http_url(value)
        assert checked is not None
        return checked


class WebhookChannel:
    """``method = "webhook"`` with a ``[delivery.webhook]`` table."""

    option: ClassVar[ChannelOption] = ChannelOption("webhook", WebhookSettings | None, None)

    @classmethod
    def open(cls, settings: WebhookSettings, context: ChannelContext) -> Channel:
        """The channel POSTing to ``settings.url`` through the context's HTTP transport."""
        token = None
        if settings.token_env:
            token = context.env.get(settings.token_env) or None
            if token is None:
                raise ConfigError(
                    f"${settings.token_env} is not set, so the webhook has no token",
                    where="delivery.webhook.token_env",
                    hint=f"export {settings.token_env}=... before running, or remove token_env",
                )
        import httpx  # only runs that send by webhook load it (`digest check` stays light)

        template = None
        if settings.template:
            template = _template(context.resolve(settings.template))
        client = httpx.Client(
            transport=context.http or httpx.HTTPTransport(retries=0),
            timeout=settings.timeout,
            follow_redirects=False,
            headers={"User-Agent": "paper-digest webhook"},
        )
        return WebhookSender(settings, context.message, client, token=token, template=template)

    @classmethod
    def target(cls, settings: WebhookSettings, context: ChannelContext) -> str:
        """The endpoint (a subscriber's own ``webhook`` goes to theirs)."""
        return settings.url


class WebhookSender(Closing):
    """POSTs each digest; one HTTP client for the run."""

    def __init__(
        self,
        settings: WebhookSettings,
        message: MessageSettings,
        client: httpx.Client,
        *,
        token: str | None = None,
        template: Any = None,
    ) -> None:
        self.settings = settings
        self.message = message
        self._client = client
        self._token = token
        self._template = template

    def send(self, outgoing: Outgoing) -> str:
        """POST the digest; the receipt names the digest once the endpoint answered 2xx."""
        own = outgoing.subscriber.webhook
        url = own or self.settings.url
        content, content_type = self._body(outgoing)
        headers = {"Content-Type": content_type}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        shown = url.split("?")[0]
        import httpx

        try:
            answer = self._client.post(url, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise TemporaryDeliveryError(
                f"the endpoint did not answer: {exc}",
                where=shown,
                hint="the digest stays owed; the next run sends it",
            ) from exc
        status = answer.status_code
        if 200 <= status < 300:
            return f"webhook:{outgoing.digest_id or outgoing.now.isoformat()}"
        said = f"HTTP {status} {answer.reason_phrase}".strip()
        if status == 429 or status >= 500:
            raise TemporaryDeliveryError(
                f"the endpoint answered {said}", where=shown, hint="the digest stays owed"
            )
        if status in GONE and own:
            raise RecipientRefusedError(
                f"the subscriber's endpoint is gone: {said}",
                where=shown,
                hint="fix or remove their webhook key; the papers stay owed",
            )
        if status in GONE or status in (401, 403):
            raise ChannelUnavailableError(
                f"the endpoint refuses every digest: {said}",
                where=shown,
                hint="check [delivery.webhook] url (and token_env); every digest stays owed",
            )
        raise MessageRefusedError(
            f"the endpoint refused the digest: {said}",
            where=shown,
            hint="the body does not suit the endpoint: check [delivery.webhook] body or template",
        )

    def _body(self, outgoing: Outgoing) -> tuple[bytes, str]:
        if self._template is not None:
            text = self._template.render(digest=digest_record(outgoing, self.message))
            return text.encode("utf-8"), self.settings.content_type
        shape = self.settings.body
        if shape == "json":
            record = digest_record(outgoing, self.message)
            return json.dumps(record, ensure_ascii=False).encode("utf-8"), "application/json"
        text = _as_text(outgoing, self.message)[: TEXT_LIMITS[shape]]
        if shape == "ntfy":
            return text.encode("utf-8"), "text/plain; charset=utf-8"
        key = "content" if shape == "discord" else "text"
        return json.dumps({key: text}, ensure_ascii=False).encode("utf-8"), "application/json"

    def close(self) -> None:
        self._client.close()


def _template(path: Path) -> Any:
    """The operator's body template (trusted, like the email templates): no HTML escaping, as
    the body is JSON or text; untrusted values go in with ``|tojson``."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(path.parent),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
    )
    try:
        return environment.get_template(path.name)
    except jinja2.TemplateError as exc:
        raise ConfigError(
            f"the webhook template cannot be used: {exc}",
            where=str(path),
            hint="fix [delivery.webhook] template (a Jinja template writing the body)",
        ) from exc


def digest_record(outgoing: Outgoing, message: MessageSettings) -> dict[str, Any]:
    """The digest as plain JSON values: what the ``json`` body is and what templates get."""
    papers = []
    for match in outgoing.matches:
        paper = match.paper
        why = [f"matched {', '.join(match.keywords)}"] if match.keywords else []
        if match.close_to:
            why.append(f"close to {clean_text(match.close_to)}")
        papers.append(
            {
                "title": clean_text(paper.title),
                "url": safe_url(paper.hf_url) or safe_url(paper.arxiv_url),
                "arxiv_id": paper.arxiv_id,
                "pdf": safe_url(paper.pdf_url),
                "code": safe_url(paper.github_repo),
                "authors": [clean_text(name) for name in paper.authors],
                "upvotes": paper.upvotes,
                "summary": clean_text(paper.ai_summary or paper.abstract)[:1000],
                "why": why,
            }
        )
    return {
        "title": clean_text(message.title),
        "subject": clean_text(outgoing.rendered.subject),
        "day": outgoing.day.isoformat(),
        "digest_id": outgoing.digest_id,
        "subscriber": {
            "email": outgoing.subscriber.email,
            "name": clean_text(outgoing.subscriber.name),
        },
        "papers": papers,
    }


def _as_text(outgoing: Outgoing, message: MessageSettings) -> str:
    record = digest_record(outgoing, message)
    lines = [record["subject"]]
    for number, paper in enumerate(record["papers"], start=1):
        lines.append(f"{number}. {paper['title']}" + (f" {paper['url']}" if paper["url"] else ""))
        if paper["why"]:
            lines.append(f"   {'; '.join(paper['why'])}")
    return "\n".join(lines)
