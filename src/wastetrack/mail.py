"""The SMTP server the liaison loop writes through, and sending one message.

Where the server comes from: ``--smtp``/``smtp=`` (the Airflow connection ``wastetrack_smtp``'s
URI), else ``$WASTETRACK_SMTP``: ``smtp://host:port`` (plain, STARTTLS when the server offers
it and ``?starttls=1``), ``smtps://user:pass@host:port`` (TLS from the first byte). The sender
address is ``?from=…`` or ``$WASTETRACK_MAIL_FROM`` (default ``wastetrack@localhost``).
Credentials are only handed to ``smtplib``: every message and log line shows the URL through
``wastetrack.store.mask_url`` and errors are one line (``MailError``).
"""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from wastetrack.store.urls import mask_secrets, mask_url

SMTP_ENV = "WASTETRACK_SMTP"
FROM_ENV = "WASTETRACK_MAIL_FROM"
SMTP_CONN_ID = "wastetrack_smtp"
DEFAULT_FROM = "wastetrack@localhost"
TIMEOUT_S = 30.0


class MailError(RuntimeError):
    """The mail server cannot be used (not configured, down, refusing): one line, no password."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    tls: bool          # smtps: TLS from the start
    starttls: bool     # smtp with ?starttls=1
    user: str
    password: str
    sender: str
    url: str           # masked, for messages

    def __repr__(self) -> str:
        return f"SmtpSettings({self.url!r})"


def smtp_settings(url: str | None = None) -> SmtpSettings:
    """Parse the server URL (argument, else ``$WASTETRACK_SMTP``); MailError when there is none or it is bad."""
    url = url or os.environ.get(SMTP_ENV, "")
    if not url:
        raise MailError(f"no mail server: set {SMTP_ENV}=smtp://host:port (or the Airflow connection "
                        f"{SMTP_CONN_ID})")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps") or not parts.hostname:
        raise MailError(f"mail server {mask_url(url)!r}: use smtp://host:port or smtps://user:pass@host:port")
    try:
        port = parts.port or (465 if scheme == "smtps" else 25)
    except ValueError:
        raise MailError(f"mail server {mask_url(url)!r}: bad port") from None
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    sender = query.get("from") or os.environ.get(FROM_ENV) or DEFAULT_FROM
    return SmtpSettings(host=parts.hostname, port=port, tls=scheme == "smtps",
                        starttls=query.get("starttls", "") in ("1", "true", "yes"),
                        user=unquote(parts.username or ""), password=unquote(parts.password or ""),
                        sender=sender, url=mask_url(url))


class Mailer:
    """One SMTP session for a batch of messages (``with Mailer(settings) as m: m.send(msg)``)."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> Mailer:
        s = self.settings
        try:
            if s.tls:
                self._smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=TIMEOUT_S,
                                              context=ssl.create_default_context())
            else:
                self._smtp = smtplib.SMTP(s.host, s.port, timeout=TIMEOUT_S)
                if s.starttls:
                    self._smtp.starttls(context=ssl.create_default_context())
            if s.user:
                self._smtp.login(s.user, s.password)
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise MailError(f"mail server {s.url} unreachable or refusing: {one_line(exc)}") from None
        return self

    def send(self, msg: EmailMessage) -> None:
        """Hand one message to the server; MailError (one line) if it is not accepted for every recipient."""
        assert self._smtp is not None, "use Mailer as a context manager"
        try:
            refused = self._smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            raise RecipientRefused(f"recipient refused by {self.settings.url}: "
                                   f"{one_line(exc.recipients)}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"mail server {self.settings.url} failed: {one_line(exc)}") from None
        if refused:
            raise RecipientRefused(f"recipient refused by {self.settings.url}: {one_line(refused)}")

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                self._smtp.close()
            self._smtp = None

    def __exit__(self, *exc: object) -> None:
        self.close()


class RecipientRefused(MailError):
    """The server took the session but not this message's recipient: the other mails still go."""


def one_line(exc: object) -> str:
    if isinstance(exc, socket.timeout):
        return "timed out"
    text = str(exc).strip().splitlines()
    return mask_secrets(text[0] if text else type(exc).__name__)[:300]
