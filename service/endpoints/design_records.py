"""The design log, published: its signed head, any record with its inclusion proof, and consistency between sizes;
and the evidence files whose records it holds, private to the maker and the sponsoring space's operators."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from campaigns.access import visible_campaign
from campaigns.errors import InvalidInput, NotAllowed, NotFound
from campaigns.transparency import log
from campaigns.transparency.evidence import (
    MAX_EVIDENCE_BYTES,
    MAX_EVIDENCE_MB,
    attach_evidence,
    campaign_evidence,
    evidence_for_download,
)
from campaigns.transparency.models import RECORD_KINDS, DesignRecord
from campaigns.transparency.schemas import ConsistencyOut, ConsistencyQuery, DesignRecordOut, TreeHeadOut
from campaigns.transparency.tree_head import log_signing_key
from service.api import UnsupportedMediaType, json_response
from service.routes import api
from service.web import current_user, settings_of, uow

TAGS = ["design-records"]


def signing_key_of(request: Request) -> Ed25519PrivateKey:
    settings = settings_of(request)
    return log_signing_key(settings.log_signing_key, secret_key=settings.secret_key)


@api.route(
    "GET",
    "/design-records/tree-head",
    summary="The design log's signed tree head: its size, root hash, time, signature and public key",
    response=TreeHeadOut,
    auth=False,
    tags=TAGS,
)
async def get_design_tree_head(request: Request) -> Response:
    async with uow(request) as session:
        head = await log.signed_tree_head(session, signing_key_of(request), now=datetime.now(UTC))
    return json_response(head.as_json())


@api.route(
    "GET",
    "/design-records/consistency",
    summary="Proof that the design log at `second` records extends the log at `first` (RFC 9162)",
    query=ConsistencyQuery,
    response=ConsistencyOut,
    auth=False,
    tags=TAGS,
)
async def get_design_consistency(request: Request, query: ConsistencyQuery) -> Response:
    async with uow(request) as session:
        proof = await log.published_consistency(
            session, query.first, query.second, signing_key_of(request), now=datetime.now(UTC)
        )
    return json_response(proof)


@api.route(
    "GET",
    "/design-records/{record_id}",
    summary="One design record with its inclusion proof against the current signed tree head",
    response=DesignRecordOut,
    auth=False,
    tags=TAGS,
)
async def get_design_record(request: Request) -> Response:
    raw = request.path_params["record_id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise NotFound(f"There is no design record {raw}.")
    async with uow(request) as session:
        document = await log.published_record(session, int(raw), signing_key_of(request), now=datetime.now(UTC))
    return json_response(document)


_EVIDENCE_UPLOAD_DOC = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "required": ["file", "kind"],
            "properties": {
                "file": {"type": "string", "format": "binary", "description": f"at most {MAX_EVIDENCE_MB} MB"},
                "kind": {"type": "string", "enum": list(RECORD_KINDS)},
            },
        }
    }
}
_EVIDENCE_TAGS = ["campaigns"]


def evidence_out(record: DesignRecord) -> dict[str, object]:
    return log.record_fields(record) | {
        "record_url": f"/api/v1/design-records/{record.id}",
        "download_url": f"/api/v1/campaigns/{record.campaign_id}/evidence/{record.id}",
    }


async def _read_evidence(request: Request) -> tuple[bytes, str, str]:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "multipart/form-data":
        raise UnsupportedMediaType("Send the file as multipart/form-data, in a field named file, with its kind.")
    async with request.form(max_files=1, max_fields=4) as form:
        upload, kind = form.get("file"), form.get("kind")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("file", "attach the evidence as a file in the field named file")
        if not isinstance(kind, str):
            raise InvalidInput("kind", f"must be one of {', '.join(RECORD_KINDS)}")
        data = await upload.read(MAX_EVIDENCE_BYTES + 1)
        return data, upload.filename or "", kind.strip()


@api.route(
    "POST",
    "/campaigns/{campaign_id}/evidence",
    summary="Attach an evidence or design file to a draft (the maker); it is recorded in the design log at once",
    status=201,
    errors=(403, 404, 409, 422),
    tags=_EVIDENCE_TAGS,
    request_content=_EVIDENCE_UPLOAD_DOC,
)
async def attach_campaign_evidence(request: Request) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        data, file_name, kind = await _read_evidence(request)
        record = await attach_evidence(
            session,
            str(request.path_params["campaign_id"]),
            maker,
            data=data,
            file_name=file_name,
            kind=kind,
            media_dir=settings_of(request).media_dir,
        )
        out = evidence_out(record)
    return json_response(out, 201)


@api.route(
    "GET",
    "/campaigns/{campaign_id}/evidence",
    summary="A campaign's evidence files with their design records (its maker and its space's operators)",
    errors=(403,),
    tags=_EVIDENCE_TAGS,
)
async def list_campaign_evidence(request: Request) -> Response:
    async with uow(request) as session:
        viewer = await current_user(request, session)
        campaign, roles = await visible_campaign(session, str(request.path_params["campaign_id"]), viewer)
        if not roles & {"maker", "operator"}:
            raise NotAllowed("Only the maker and the sponsoring space's operators may see evidence files.")
        records = await campaign_evidence(session, campaign.id)
        items = [evidence_out(record) for record in records]
    return json_response({"items": items})


@api.route(
    "GET",
    "/campaigns/{campaign_id}/evidence/{record_id}",
    summary="Download an evidence file (its maker and its space's operators)",
    errors=(403,),
    tags=_EVIDENCE_TAGS,
    response_content={"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
)
async def download_campaign_evidence(request: Request) -> Response:
    raw = str(request.path_params["record_id"])
    async with uow(request) as session:
        viewer = await current_user(request, session)
        if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
            await visible_campaign(session, str(request.path_params["campaign_id"]), viewer)
            raise NotFound("No such evidence file.")
        record, path = await evidence_for_download(
            session,
            str(request.path_params["campaign_id"]),
            int(raw),
            viewer,
            media_dir=settings_of(request).media_dir,
        )
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=record.file_name,
        headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
    )
