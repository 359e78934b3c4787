"""Outgoing mail. Pluggable; the default writes each mail to ``UZO_HOME/outbox``."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

import structlog

if TYPE_CHECKING:
    from pathlib import Path

log = structlog.get_logger("uzo.mail")


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


class MailSender(Protocol):
    def send(self, mail: Mail) -> None: ...


class OutboxSender:
    """Writes mails as JSON files; the log line names the file, never the content."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, mail: Mail) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self.directory / f"{stamp}-{uuid.uuid4().hex[:8]}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(mail), indent=2))
        tmp.chmod(0o600)
        tmp.replace(path)
        log.info("mail written to outbox", subject=mail.subject, file=str(path))


def build_sender(kind: str, home: Path) -> MailSender:
    if kind == "outbox":
        return OutboxSender(home / "outbox")
    raise ValueError(f"unknown mail sender {kind!r} (UZO_AUTH_MAIL_SENDER); known: outbox")
