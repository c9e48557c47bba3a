"""Checking a published design record offline: the file, the leaf, the inclusion proof and the head's signature."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from campaigns.transparency import merkle
from campaigns.transparency.log import leaf_data
from campaigns.transparency.tree_head import TreeHead, tree_head_is_signed


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str


def verify_design_record(document: dict[str, Any], content: bytes, *, public_key: str | None = None) -> Verdict:
    """Whether `content` is the file `document` (GET /api/v1/design-records/{id}) records, in a log signed by
    `public_key` (by default the one the document names: pass the key you trust to rule out a forged head)."""
    try:
        fields = document["record"]
        head = TreeHead(**document["tree_head"])
        proof = [bytes.fromhex(node) for node in document["inclusion_proof"]]
        root = bytes.fromhex(head.root_hash)
        index, size = int(fields["index"]), int(head.size)
    except (KeyError, TypeError, ValueError) as exc:
        return Verdict(False, f"the record document is malformed ({exc!r})")
    digest = hashlib.sha256(content).hexdigest()
    if digest != fields.get("sha256"):
        return Verdict(False, f"the file's SHA-256 is {digest}, the record says {fields.get('sha256')}")
    leaf = merkle.leaf_hash(leaf_data(fields))
    if not merkle.verify_inclusion(index, size, leaf, proof, root):
        return Verdict(False, f"the inclusion proof does not lead from record {index} to the root of {size} records")
    if not tree_head_is_signed(head, public_key or head.public_key):
        return Verdict(False, "the tree head's signature does not verify with the public key")
    return Verdict(
        True,
        f"{fields['file_name']} (SHA-256 {digest}) is record {index} of the design log, recorded at "
        f"{fields['recorded_at']}, included in the signed tree head of {size} records at {head.timestamp}",
    )
