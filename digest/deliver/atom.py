"""``method = "atom"``: each subscriber's digests as an Atom feed, ``<feeds>/<subscriber>.xml``.

Every paper of a digest becomes one entry (its link, the summary the email shows, why it
matched), newest first; the last :data:`KEEP` entries are kept. A feed is rewritten whole under a
temporary name, fsynced and renamed into place, so a reader (or a crash) never meets half a file.
An entry's id follows from the subscriber and the paper, so a paper is in a feed at most once: a
digest delivered again after a crash (or its papers sent again in the next digest) replaces its
entries instead of adding copies, and the ledger's promises hold as for mail.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import ClassVar

from digest.deliver import Channel, ChannelContext, Closing, MessageSettings, Outgoing
from digest.errors import TemporaryDeliveryError
from digest.models import Match
from digest.render.highlight import shorten
from digest.settings import ChannelOption, LocalPath
from digest.untrusted import clean_text, safe_url

ATOM = "http://www.w3.org/2005/Atom"
KEEP = 50
_SLUG = re.compile(r"[^a-z0-9]+")
ElementTree.register_namespace("", ATOM)


class AtomChannel:
    """``method = "atom"``, ``[delivery] feeds`` (default ``feeds``): one feed per subscriber."""

    option: ClassVar[ChannelOption] = ChannelOption("feeds", LocalPath, "feeds")

    @classmethod
    def open(cls, settings: str, context: ChannelContext) -> Channel:
        """The channel writing into the feeds folder."""
        return AtomFeeds(context.resolve(settings), context.message)

    @classmethod
    def target(cls, settings: str, context: ChannelContext) -> str:
        """The feeds folder."""
        return str(context.resolve(settings))


def feed_name(email: str) -> str:
    """The feed file of ``email``: readable, and distinct for every address."""
    address = email.strip().lower()
    tag = hashlib.sha256(address.encode("utf-8")).hexdigest()[:8]
    return f"{_SLUG.sub('-', address).strip('-')[:60]}-{tag}.xml"


class AtomFeeds(Closing):
    """Writes digests into per-subscriber Atom feeds in ``folder``."""

    def __init__(self, folder: Path, settings: MessageSettings) -> None:
        self.folder = folder
        self.settings = settings
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TemporaryDeliveryError(
                f"cannot create the feeds folder: {exc.strerror or exc}",
                where=str(folder),
                hint="check [delivery] feeds and the folder's permissions",
            ) from exc

    def path_for(self, email: str) -> Path:
        """Where the feed of ``email`` is written."""
        return self.folder / feed_name(email)

    def send(self, outgoing: Outgoing) -> str:
        """Add the digest's papers to the subscriber's feed; the receipt is the digest's urn."""
        receipt = f"urn:paper-digest:digest:{outgoing.digest_id or outgoing.now.isoformat()}"
        path = self.path_for(outgoing.subscriber.email)
        feed_id = _feed_id(outgoing.subscriber.address)
        fresh = [self._entry(outgoing, feed_id, match) for match in outgoing.matches]
        ids = {_entry_id(entry) for entry in fresh}
        kept = [entry for entry in _read_entries(path) if _entry_id(entry) not in ids]
        feed = self._feed(outgoing, [*fresh, *kept][:KEEP])
        try:
            _write_atomic(path, ElementTree.tostring(feed, encoding="utf-8", xml_declaration=True))
        except OSError as exc:
            raise TemporaryDeliveryError(
                f"cannot write the feed: {exc.strerror or exc}",
                where=str(path),
                hint="check free space and permissions of the feeds folder",
            ) from exc
        return receipt

    def _feed(self, outgoing: Outgoing, entries: list[ElementTree.Element]) -> ElementTree.Element:
        subscriber = outgoing.subscriber
        feed = ElementTree.Element(f"{{{ATOM}}}feed")
        _text(feed, "id", _feed_id(subscriber.address))
        who = clean_text(subscriber.name) or subscriber.email
        _text(feed, "title", f"{clean_text(self.settings.title)} for {who}")
        _text(feed, "updated", _stamp(outgoing.now))
        author = ElementTree.SubElement(feed, f"{{{ATOM}}}author")
        _text(author, "name", clean_text(self.settings.title))
        _text(feed, "generator", "paper-digest")
        feed.extend(entries)
        return feed

    def _entry(self, outgoing: Outgoing, feed_id: str, match: Match) -> ElementTree.Element:
        paper = match.paper
        entry = ElementTree.Element(f"{{{ATOM}}}entry")
        _text(entry, "id", f"{feed_id}:paper:{paper.key}")
        _text(entry, "title", clean_text(paper.title))
        _text(entry, "updated", _stamp(outgoing.now))
        link = safe_url(paper.hf_url) or safe_url(paper.arxiv_url)
        if link:
            ElementTree.SubElement(entry, f"{{{ATOM}}}link", rel="alternate", href=link)
        for name in paper.authors[:10]:
            author = ElementTree.SubElement(entry, f"{{{ATOM}}}author")
            _text(author, "name", clean_text(name))
        for keyword in match.keywords:
            ElementTree.SubElement(entry, f"{{{ATOM}}}category", term=clean_text(keyword))
        summary = shorten(clean_text(paper.ai_summary or paper.abstract), 3, 600)
        why = ", ".join(clean_text(k) for k in match.keywords)
        text = summary.text + ("…" if summary.ellipsis else "")
        if why:
            text += f"\n\nWhy: matched {why}."
        _text(entry, "summary", text.strip(), type="text")
        return entry


def _feed_id(address: str) -> str:
    return f"urn:paper-digest:feed:{hashlib.sha256(address.encode('utf-8')).hexdigest()[:16]}"


def _text(parent: ElementTree.Element, tag: str, value: str, **attributes: str) -> None:
    ElementTree.SubElement(parent, f"{{{ATOM}}}{tag}", attributes).text = value


def _entry_id(entry: ElementTree.Element) -> str:
    found = entry.find(f"{{{ATOM}}}id")
    return found.text or "" if found is not None else ""


def _read_entries(path: Path) -> list[ElementTree.Element]:
    """The entries of the feed at ``path``, newest first; none when missing or unreadable."""
    import defusedxml.ElementTree

    try:
        root = defusedxml.ElementTree.parse(path).getroot()
    except FileNotFoundError:
        return []
    except Exception:  # a damaged feed is replaced by a good one, not a reason to stop mail
        return []
    return [] if root is None else list(root.iter(f"{{{ATOM}}}entry"))


def _stamp(when: dt.datetime) -> str:
    moment = when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _write_atomic(path: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
