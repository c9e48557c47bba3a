"""Campaign images: multipart upload through the API, and the files served from the media folder."""

from __future__ import annotations

import asyncio

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from campaigns.campaign_schemas import ImageOut
from campaigns.errors import InvalidInput
from campaigns.images import (
    MAX_IMAGE_BYTES,
    MAX_IMAGE_MB,
    MEDIA_TYPES,
    add_campaign_image,
    media_path,
    remove_campaign_image,
)
from service.api import UnsupportedMediaType, json_response
from service.endpoints.campaigns import image_out
from service.routes import api
from service.web import current_user, settings_of, uow

# Stored images never change (a new upload gets a new name), so browsers and proxies may keep them for good.
IMMUTABLE = "public, max-age=31536000, immutable"

_UPLOAD_DOC = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "required": ["file"],
            "properties": {
                "file": {
                    "type": "string",
                    "format": "binary",
                    "description": f"JPEG, PNG, WebP or GIF, at most {MAX_IMAGE_MB} MB",
                },
                "role": {"type": "string", "enum": ["cover", "gallery"], "default": "gallery"},
            },
        }
    }
}


async def _read_upload(request: Request) -> tuple[bytes, str]:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "multipart/form-data":
        raise UnsupportedMediaType("Send the image as multipart/form-data, in a field named file.")
    async with request.form(max_files=1, max_fields=4) as form:
        upload = form.get("file")
        role = form.get("role") or "gallery"
        if not isinstance(upload, UploadFile):
            raise InvalidInput("file", "attach the image as a file in the field named file")
        if not isinstance(role, str):
            raise InvalidInput("role", "must be cover or gallery")
        data = await upload.read(MAX_IMAGE_BYTES + 1)
    return data, role.strip()


@api.route(
    "POST",
    "/campaigns/{campaign_id}/images",
    summary="Upload a cover or gallery image (the maker); checked, re-encoded and stripped of metadata",
    response=ImageOut,
    status=201,
    errors=(403, 409, 413, 415, 422),
    idempotent=True,
    tags=["campaigns"],
    request_content=_UPLOAD_DOC,
)
async def upload_campaign_image(request: Request) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        data, role = await _read_upload(request)
        image = await add_campaign_image(
            session,
            str(request.path_params["campaign_id"]),
            maker,
            data=data,
            role=role,
            media_dir=settings_of(request).media_dir,
        )
        out = image_out(image)
    return json_response(out, 201)


@api.route(
    "DELETE",
    "/campaigns/{campaign_id}/images/{image_id}",
    summary="Take an image off the campaign (the maker)",
    status=204,
    errors=(403, 409),
    tags=["campaigns"],
)
async def remove_image(request: Request) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        await remove_campaign_image(
            session, str(request.path_params["campaign_id"]), str(request.path_params["image_id"]), maker
        )
    return Response(status_code=204)


async def serve_media(request: Request) -> Response:
    filename = str(request.path_params["filename"])
    path = media_path(settings_of(request).media_dir, str(request.path_params["campaign_id"]), filename)
    if path is None or not await asyncio.to_thread(path.is_file):
        raise HTTPException(404, "No such image.")
    media_type = MEDIA_TYPES[filename.rsplit(".", 1)[1]]
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": IMMUTABLE})


media_routes = [Route("/media/{campaign_id}/{filename}", serve_media, methods=["GET", "HEAD"])]
