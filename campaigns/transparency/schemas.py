"""The design log's published documents, as the OpenAPI document describes them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from campaigns.schemas_base import RequestModel


class TreeHeadOut(BaseModel):
    size: int = Field(description="How many records the log held")
    root_hash: str = Field(description="The Merkle tree's root (RFC 9162), 64 hex digits")
    timestamp: str = Field(description="When the head was signed, UTC, YYYY-MM-DDTHH:MM:SSZ")
    signature: str = Field(description="Ed25519 signature (base64) of the canonical bytes the README documents")
    public_key: str = Field(description="The log's Ed25519 public key, base64 of its 32 raw bytes")


class DesignRecordFields(BaseModel):
    index: int
    sha256: str
    file_name: str
    size: int
    kind: str
    maker_id: str
    campaign_id: str
    recorded_at: str


class DesignRecordOut(BaseModel):
    record: DesignRecordFields
    leaf_hash: str = Field(description="SHA-256(0x00 || the record's canonical JSON), hex")
    inclusion_proof: list[str] = Field(description="The audit path from the leaf to tree_head's root, hex")
    tree_head: TreeHeadOut


class ConsistencyQuery(RequestModel):
    first: int = Field(ge=0, description="The older tree's size")
    second: int = Field(ge=0, description="The newer tree's size, at most the log's size")


class ConsistencyOut(BaseModel):
    first: int
    second: int
    first_root_hash: str
    second_root_hash: str
    consistency_proof: list[str] = Field(description="RFC 9162 consistency proof from first to second, hex")
    tree_head: TreeHeadOut
