"""A campaign's cover and gallery: every upload is decoded by Pillow, re-encoded without its metadata (camera, GPS)
and written under the media folder; what is not a real image, or is too big, is refused before anything is stored."""

from __future__ import annotations

import asyncio
import io
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns import lifecycle
from campaigns.access import campaign_for, visible_campaign
from campaigns.errors import InvalidInput, NotFound
from campaigns.ids import parse_id
from campaigns.models import CampaignImage, User

# The one limit of an image upload: the API, the maker's page, its hint and its check in the browser all use it.
MAX_IMAGE_MB = 5
MAX_IMAGE_BYTES = MAX_IMAGE_MB * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
# Longer sides are scaled down: a page never shows more, and it keeps the files small.
MAX_SIDE = 3000
IMAGE_ROLES = ("cover", "gallery")

# Pillow's format -> (format written, file extension). GIFs become PNGs of their first frame.
_OUTPUT = {"JPEG": ("JPEG", "jpg"), "PNG": ("PNG", "png"), "WEBP": ("WEBP", "webp"), "GIF": ("PNG", "png")}
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
STORED_NAME = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.(jpg|png|webp)$")


@dataclass(frozen=True)
class PreparedImage:
    content: bytes
    extension: str
    width: int
    height: int


def _not_an_image() -> InvalidInput:
    return InvalidInput("file", "is not an image Kindling can read; upload a JPEG, PNG, WebP or GIF")


def prepare_image(data: bytes) -> PreparedImage:
    """Check that `data` is a real image of at most MAX_IMAGE_MB and re-encode it with no metadata. Raises
    InvalidInput."""
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidInput("file", f"is larger than {MAX_IMAGE_MB} MB")
    if not data:
        raise InvalidInput("file", "is empty")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.format not in _OUTPUT:
                raise _not_an_image()
            if probe.width * probe.height > MAX_IMAGE_PIXELS:
                raise InvalidInput("file", f"has more than {MAX_IMAGE_PIXELS // 1_000_000} million pixels")
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            source_format = image.format or ""
            image.load()
            upright = ImageOps.exif_transpose(image)
    except InvalidInput:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidInput("file", f"has more than {MAX_IMAGE_PIXELS // 1_000_000} million pixels") from None
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        IndexError,
        TypeError,
    ):
        raise _not_an_image() from None
    return _encode(upright, source_format)


def _encode(image: Image.Image, source_format: str) -> PreparedImage:
    output_format, extension = _OUTPUT[source_format]
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    clean = image.convert("RGBA" if has_alpha and output_format != "JPEG" else "RGB")
    clean.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    clean.info = {}  # nothing of the original's metadata travels: no EXIF, no ICC profile, no text chunks
    buffer = io.BytesIO()
    if output_format == "JPEG":
        clean.save(buffer, "JPEG", quality=85, optimize=True, progressive=True)
    elif output_format == "WEBP":
        clean.save(buffer, "WEBP", quality=85)
    else:
        clean.save(buffer, "PNG", optimize=True)
    return PreparedImage(buffer.getvalue(), extension, clean.width, clean.height)


def media_path(media_dir: Path, campaign_id: uuid.UUID | str, filename: str) -> Path | None:
    """Where a stored image lives, or None when the names are not ones Kindling gives out (no path tricks)."""
    ident = parse_id(str(campaign_id))
    if ident is None or not STORED_NAME.match(filename):
        return None
    return media_dir / str(ident) / filename


def image_url(image: CampaignImage) -> str:
    return f"/media/{image.campaign_id}/{image.filename}"


def _write_file(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    partial.write_bytes(content)
    os.replace(partial, path)


def _remove_file(path: Path) -> None:
    path.unlink(missing_ok=True)


async def add_campaign_image(
    session: AsyncSession,
    campaign_ref: uuid.UUID | str,
    maker: User,
    *,
    data: bytes,
    role: str,
    media_dir: Path,
) -> CampaignImage:
    """Store an uploaded image as the campaign's cover (replacing the previous one) or in its gallery.

    The file is written only once the image has passed every check; the row is added in the caller's transaction.
    """
    if role not in IMAGE_ROLES:
        raise InvalidInput("role", "must be cover or gallery")
    found, roles = await visible_campaign(session, campaign_ref, maker)
    lifecycle.check(found.status, "add_image", roles)  # refuse early, before decoding anything
    prepared = await asyncio.to_thread(prepare_image, data)
    campaign, _roles = await campaign_for(session, found.id, maker, "add_image")
    image_id = uuid.uuid4()
    filename = f"{image_id}.{prepared.extension}"
    path = media_dir / str(campaign.id) / filename
    await asyncio.to_thread(_write_file, path, prepared.content)
    try:
        if role == "cover":
            for old in await session.scalars(
                select(CampaignImage).where(CampaignImage.campaign_id == campaign.id, CampaignImage.role == "cover")
            ):
                await session.delete(old)
        image = CampaignImage(
            id=image_id,
            campaign_id=campaign.id,
            role=role,
            filename=filename,
            width=prepared.width,
            height=prepared.height,
        )
        session.add(image)
        await session.flush()
    except BaseException:
        await asyncio.to_thread(_remove_file, path)
        raise
    return image


async def remove_campaign_image(
    session: AsyncSession, campaign_ref: uuid.UUID | str, image_ref: uuid.UUID | str, maker: User
) -> CampaignImage:
    """Take an image off the campaign. The file stays: its URL was served as immutable and may be cached."""
    campaign, _roles = await campaign_for(session, campaign_ref, maker, "add_image")
    ident = parse_id(image_ref)
    image = await session.get(CampaignImage, ident) if ident else None
    if image is None or image.campaign_id != campaign.id:
        raise NotFound("This campaign has no such image.")
    await session.delete(image)
    await session.flush()
    return image
