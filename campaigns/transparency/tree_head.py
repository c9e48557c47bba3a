"""Signed tree heads: the log's size and root at a moment, signed with Ed25519 so anyone with the public key can check.

The signed bytes are, in UTF-8, four lines each ending in a newline:

    kindling design log v1
    size <decimal size>
    root <root hash, 64 lowercase hex digits>
    time <UTC time, YYYY-MM-DDTHH:MM:SSZ>
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def log_signing_key(configured: str, *, secret_key: str) -> Ed25519PrivateKey:
    """The configured key (base64 of 32 raw bytes), or, when none is, one derived from the site's secret key."""
    if configured:
        return Ed25519PrivateKey.from_private_bytes(base64.b64decode(configured))
    seed = hashlib.sha256(b"kindling design log signing key\x00" + secret_key.encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_text(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def signed_bytes(size: int, root_hex: str, time: str) -> bytes:
    return f"kindling design log v1\nsize {size}\nroot {root_hex}\ntime {time}\n".encode()


@dataclass(frozen=True)
class TreeHead:
    size: int
    root_hash: str
    timestamp: str
    signature: str
    public_key: str

    def as_json(self) -> dict[str, object]:
        return {
            "size": self.size,
            "root_hash": self.root_hash,
            "timestamp": self.timestamp,
            "signature": self.signature,
            "public_key": self.public_key,
        }


def sign_tree_head(key: Ed25519PrivateKey, *, size: int, root: bytes, time: str) -> TreeHead:
    signature = key.sign(signed_bytes(size, root.hex(), time))
    return TreeHead(
        size=size,
        root_hash=root.hex(),
        timestamp=time,
        signature=base64.b64encode(signature).decode(),
        public_key=public_key_text(key),
    )


def tree_head_is_signed(head: TreeHead, public_key: str) -> bool:
    """True when `head` carries a valid signature by `public_key` (base64 of the 32 raw bytes)."""
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key, validate=True))
        key.verify(
            base64.b64decode(head.signature, validate=True), signed_bytes(head.size, head.root_hash, head.timestamp)
        )
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True
