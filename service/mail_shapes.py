"""Many mails of one shape, flattened once: an update's mail is the same for every reader of one language, clock and
greeting but for four things (the reader's name, their address, their unsubscribe link and the Message-ID). The mailer
renders the mail once with slots where those go (`NAME`, `ADDRESS`, `UNSUBSCRIBE`), and each mail fills the slots and
encodes its two parts with binascii, putting the headers encoded once by the email package around them.

Why: the email package took about 10 ms to build and flatten each mail, slower than an SMTP server takes them; filling
a shape takes a few hundredths of that. The message is what the email package makes of the same mail (tests prove it
by parsing both), except that List-Unsubscribe keeps its link as written (`<https://…>`), as RFC 2369 wants.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass
from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
from email.utils import parseaddr
from typing import Any

from markupsafe import escape

_SLOT = f"kdlslot{secrets.token_hex(8)}"
NAME = f"{_SLOT}name"
ADDRESS = f"{_SLOT}address"
UNSUBSCRIBE = f"{_SLOT}unsubscribe"
SLOTS = (NAME, ADDRESS, UNSUBSCRIBE)
ONE_CLICK = "List-Unsubscribe=One-Click"
# RFC 5322: a header line may be up to 998 characters; a link or an address is never broken inside.
HEADER_LINE_LIMIT = 998
# What goes into a header as it is written: an address of plain ASCII (RFC 5322 atext, dots and one "@"), a link of
# plain ASCII (RFC 3986's characters).
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")
_PLAIN_LINK = re.compile(r"https?://[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+")
_HEADERS = policy.default  # folds at 78 characters with "\n"; the whole message turns to CRLF at the end


class UnfoldedHeader(UnstructuredHeader, BaseHeader):
    """A header whose value is one token a reader parses (`<https://…/unsubscribe/…>`): kept on one line as written.
    The email package would otherwise write a link longer than 78 characters as an RFC 2047 encoded word, which no
    mail client reads as a List-Unsubscribe link."""

    def fold(self, *, policy: Any) -> str:
        return f"{self.name}: {self}{policy.linesep}"


_REGISTRY = HeaderRegistry()
_REGISTRY.map_to_type("list-unsubscribe", UnfoldedHeader)
# The policy of messages the email package builds (service.mail.build_message): its List-Unsubscribe stays unfolded.
MESSAGE_POLICY = policy.default.clone(header_factory=_REGISTRY)


@dataclass(frozen=True)
class Recipient:
    address: str
    name: str | None
    unsubscribe: str | None
    message_id: str


@dataclass(frozen=True)
class MessageShape:
    """A mail rendered with slots (`subject`, `text`, `html`), and its headers and parts' encodings chosen once."""

    subject: str
    text: str
    html: str
    envelope_sender: str
    head: bytes
    boundary: bytes
    text_encoding: str
    html_encoding: str

    @classmethod
    def of(cls, subject: str, text: str, html: str, *, sender: str) -> MessageShape | None:
        """The shape of mails rendered as `subject`, `text` and `html` from `sender`; None when they are not one shape
        (a slot in the subject, a sender address the envelope cannot carry in ASCII): the email package builds each."""
        envelope_sender = parseaddr(sender)[1]
        if any(slot in subject for slot in SLOTS) or not envelope_sender.isascii():
            return None
        head = "".join(
            _HEADERS.header_factory(name, value).fold(policy=_HEADERS)
            for name, value in (("From", sender), ("Subject", subject))
        )
        return cls(
            subject=subject,
            text=text,
            html=html,
            envelope_sender=envelope_sender,
            head=head.encode("ascii"),
            boundary=f"==============={secrets.randbelow(10**19):019d}==".encode("ascii"),
            text_encoding=_shorter_encoding(text),
            html_encoding=_shorter_encoding(html),
        )

    def texts(self, recipient: Recipient) -> tuple[str, str]:
        """The mail's text and HTML with the recipient's parts in place (escaped in the HTML, as Jinja does)."""
        name = recipient.name or ""
        unsubscribe = recipient.unsubscribe or ""
        text = self.text.replace(NAME, name).replace(ADDRESS, recipient.address).replace(UNSUBSCRIBE, unsubscribe)
        html = (
            self.html.replace(NAME, escape(name))
            .replace(ADDRESS, escape(recipient.address))
            .replace(UNSUBSCRIBE, escape(unsubscribe))
        )
        return text, html

    def message(self, recipient: Recipient, text: str, html: str) -> bytes | None:
        """The flattened message (CRLF, 7-bit) of `texts(recipient)`; None when the recipient's address or link
        cannot go into a header as written (the email package builds that mail)."""
        if not _is_plain(_PLAIN_ADDRESS, recipient.address) or (
            recipient.unsubscribe is not None and not _is_plain(_PLAIN_LINK, recipient.unsubscribe)
        ):
            return None
        headers = [self.head, b"To: %s\nMessage-ID: %s\n" % (recipient.address.encode(), recipient.message_id.encode())]
        if recipient.unsubscribe is not None:
            headers.append(b"List-Unsubscribe: <%s>\n" % recipient.unsubscribe.encode())
            headers.append(b"List-Unsubscribe-Post: %s\n" % ONE_CLICK.encode())
        separator = b"--" + self.boundary
        message = b"".join(
            (
                *headers,
                b'MIME-Version: 1.0\nContent-Type: multipart/alternative;\n boundary="%s"\n\n' % self.boundary,
                _part(separator, "plain", self.text_encoding, text),
                _part(separator, "html", self.html_encoding, html),
                separator,
                b"--\n",
            )
        )
        return message.replace(b"\n", b"\r\n")


def _part(separator: bytes, subtype: str, encoding: str, content: str) -> bytes:
    head = b'%s\nContent-Type: text/%s; charset="utf-8"\nContent-Transfer-Encoding: %s\n\n' % (
        separator,
        subtype.encode(),
        encoding.encode(),
    )
    return head + _encode(content, encoding) + b"\n"


def _encode(content: str, encoding: str) -> bytes:
    """The part's body as the email package encodes it (its lines joined by "\n", then quoted-printable or base64
    in lines of at most 76 characters)."""
    body = b"\n".join(content.encode("utf-8").splitlines()) + b"\n"
    if encoding == "base64":
        return base64.encodebytes(body)
    return binascii.b2a_qp(body, istext=True)


def _shorter_encoding(content: str) -> str:
    """Quoted-printable for mostly ASCII text, base64 for mostly Chinese, as the email package chooses."""
    quoted, based = (len(_encode(content, encoding)) for encoding in ("quoted-printable", "base64"))
    return "base64" if quoted > based else "quoted-printable"


def _is_plain(form: re.Pattern[str], value: str) -> bool:
    return len(value) <= HEADER_LINE_LIMIT - len("List-Unsubscribe: <>") and form.fullmatch(value) is not None
