"""Campaign images: real images only, at most 5 MB, re-encoded without metadata, served for good."""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import ExifTags, Image
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.errors import InvalidInput
from campaigns.images import MAX_IMAGE_BYTES, prepare_image
from campaigns.models import CampaignImage
from service.settings import Settings
from tests.helpers import (
    Actor,
    create_campaign,
    create_space,
    drafted_campaign,
    launched_campaign,
    make_admin,
    make_operator,
    sign_up,
)


def picture(fmt: str = "PNG", size: tuple[int, int] = (64, 48), mode: str = "RGB", **save: Any) -> bytes:
    image = Image.new(mode, size, (200, 80, 20) if mode == "RGB" else None)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def photo_with_metadata() -> bytes:
    """A phone photo: camera make and model, GPS position, taken sideways (orientation 6)."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneCo"
    exif[ExifTags.Base.Model] = "Spyglass 12"
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (22.0, 32.0, 36.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (113.0, 56.0, 24.0),
    }
    return picture("JPEG", size=(80, 40), exif=exif.tobytes(), quality=90)


async def upload(
    client: httpx.AsyncClient,
    actor: Actor | None,
    campaign: dict[str, Any],
    data: bytes,
    *,
    role: str | None = "gallery",
    filename: str = "photo.png",
    content_type: str = "image/png",
) -> httpx.Response:
    return await client.post(
        f"/api/v1/campaigns/{campaign['id']}/images",
        files={"file": (filename, data, content_type)},
        data={"role": role} if role is not None else {},
        headers=actor.headers if actor else {},
    )


def stored_files(settings: Settings, campaign: dict[str, Any]) -> list[Path]:
    folder = settings.media_dir / campaign["id"]
    return sorted(folder.iterdir()) if folder.exists() else []


async def image_rows(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(CampaignImage)) or 0)


async def arrange(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> tuple[dict[str, Any], Actor, Actor, Actor]:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    operator = await make_operator(client, admin, space)
    maker = await sign_up(client, "Maker")
    return await create_campaign(client, maker, space), maker, operator, await sign_up(client, "Stranger")


# Through the API


async def test_a_maker_uploads_a_cover_and_it_is_served_for_good(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    campaign, maker, _operator, _stranger = await arrange(client, sessions)
    response = await upload(client, maker, campaign, picture("PNG", size=(640, 480)), role="cover")
    assert response.status_code == 201, response.text
    image = response.json()
    assert set(image) >= {"id", "url", "width", "height"}
    assert (image["width"], image["height"], image["role"]) == (640, 480, "cover")
    assert image["url"] == f"/media/{campaign['id']}/{image['id']}.png"

    served = await client.get(image["url"])
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert Image.open(io.BytesIO(served.content)).size == (640, 480)
    assert (await client.head(image["url"])).status_code == 200

    shown = (await client.get(f"/api/v1/campaigns/{campaign['id']}", headers=maker.headers)).json()
    assert shown["cover"] == image and shown["images"] == []


async def test_a_new_cover_replaces_the_old_and_the_gallery_keeps_every_image(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, _operator, _stranger = await arrange(client, sessions)
    await upload(client, maker, campaign, picture(), role="cover")
    second_cover = (await upload(client, maker, campaign, picture("JPEG"), role="cover", filename="c.jpg")).json()
    gallery = [(await upload(client, maker, campaign, picture(), role=None)).json() for _ in range(2)]
    shown = (await client.get(f"/api/v1/campaigns/{campaign['id']}", headers=maker.headers)).json()
    assert shown["cover"]["id"] == second_cover["id"] and second_cover["url"].endswith(".jpg")
    assert [i["id"] for i in shown["images"]] == [g["id"] for g in gallery]

    removed = await client.delete(
        f"/api/v1/campaigns/{campaign['id']}/images/{gallery[0]['id']}", headers=maker.headers
    )
    assert removed.status_code == 204
    shown = (await client.get(f"/api/v1/campaigns/{campaign['id']}", headers=maker.headers)).json()
    assert [i["id"] for i in shown["images"]] == [gallery[1]["id"]]
    again = await client.delete(f"/api/v1/campaigns/{campaign['id']}/images/{gallery[0]['id']}", headers=maker.headers)
    assert again.status_code == 404


async def test_metadata_is_stripped_and_the_photo_stands_upright(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, _operator, _stranger = await arrange(client, sessions)
    original = photo_with_metadata()
    assert b"PhoneCo" in original
    response = await upload(client, maker, campaign, original, filename="IMG_0001.JPG", content_type="image/jpeg")
    assert response.status_code == 201, response.text
    # Orientation 6 means "turn it a quarter": the stored image is upright, 40 wide and 80 high.
    assert (response.json()["width"], response.json()["height"]) == (40, 80)
    stored = (await client.get(response.json()["url"])).content
    assert b"PhoneCo" not in stored and b"Spyglass" not in stored and b"Exif" not in stored
    reopened = Image.open(io.BytesIO(stored))
    assert reopened.format == "JPEG" and len(reopened.getexif()) == 0 and "icc_profile" not in reopened.info


@pytest.mark.parametrize(
    ("data", "filename", "content_type"),
    [
        (b"just some text pretending", "photo.png", "image/png"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj", "photo.jpg", "image/jpeg"),
        (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "logo.svg", "image/svg+xml"),
        (b"", "empty.png", "image/png"),
    ],
)
async def test_what_is_not_an_image_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    data: bytes,
    filename: str,
    content_type: str,
) -> None:
    campaign, maker, _operator, _stranger = await arrange(client, sessions)
    response = await upload(client, maker, campaign, data, filename=filename, content_type=content_type)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["file"]
    assert stored_files(settings, campaign) == [] and await image_rows(sessions) == 0


async def test_a_truncated_image_is_refused(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    campaign, maker, _operator, _stranger = await arrange(client, sessions)
    whole = picture("JPEG", size=(400, 300), quality=95)
    response = await upload(client, maker, campaign, whole[: len(whole) // 2], filename="cut.jpg")
    assert response.status_code == 422, response.text
    assert stored_files(settings, campaign) == []


async def test_over_five_megabytes_is_422_and_over_the_body_limit_is_413(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    campaign, maker, _operator, _stranger = await arrange(client, sessions)
    noise = Image.frombytes("RGB", (1400, 1400), os.urandom(1400 * 1400 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, "PNG", compress_level=0)
    big = buffer.getvalue()
    assert MAX_IMAGE_BYTES < len(big) < 8 * 1024 * 1024
    too_big = await upload(client, maker, campaign, big)
    assert too_big.status_code == 422
    assert too_big.json()["errors"] == [{"field": "file", "message": "is larger than 5 MB"}]
    huge = await upload(client, maker, campaign, big + b"\0" * (3 * 1024 * 1024))
    assert huge.status_code == 413
    assert stored_files(settings, campaign) == [] and await image_rows(sessions) == 0


async def test_who_may_upload(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> None:
    campaign, maker, operator, stranger = await arrange(client, sessions)
    assert (await upload(client, None, campaign, picture())).status_code == 401
    assert (await upload(client, stranger, campaign, picture())).status_code == 404
    assert (await upload(client, operator, campaign, picture())).status_code == 403
    no_such = {"id": str(uuid.uuid4())}
    assert (await upload(client, maker, no_such, picture())).status_code == 404

    live, live_maker, _op = await launched_campaign(client, sessions)
    assert (await upload(client, stranger, live, picture())).status_code == 403
    assert (await upload(client, live_maker, live, picture())).status_code == 201


async def test_a_campaign_under_review_keeps_its_images(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    maker = await sign_up(client, "Maker")
    campaign = await drafted_campaign(client, maker, space)
    await client.post(f"/api/v1/campaigns/{campaign['id']}/submit", headers=maker.headers)
    refused = await upload(client, maker, campaign, picture())
    assert refused.status_code == 409 and refused.json()["type"] == "images-closed"


async def test_a_bad_upload_request_says_what_is_wrong(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, _operator, _stranger = await arrange(client, sessions)
    path = f"/api/v1/campaigns/{campaign['id']}/images"
    wrong_role = await upload(client, maker, campaign, picture(), role="banner")
    assert wrong_role.status_code == 422 and wrong_role.json()["errors"][0]["field"] == "role"
    no_file = await client.post(path, files={"picture": ("x.png", picture(), "image/png")}, headers=maker.headers)
    assert no_file.status_code == 422 and no_file.json()["errors"][0]["field"] == "file"
    as_field = await client.post(path, data={"file": "not a file"}, files={"other": ("a", b"a")}, headers=maker.headers)
    assert as_field.status_code == 422
    as_json = await client.post(path, json={"file": "aGVsbG8="}, headers=maker.headers)
    assert as_json.status_code == 415
    two_files = await client.post(
        path,
        files=[("file", ("a.png", picture(), "image/png")), ("file", ("b.png", picture(), "image/png"))],
        headers=maker.headers,
    )
    assert two_files.status_code == 400


async def test_only_stored_images_are_served(client: httpx.AsyncClient, settings: Settings) -> None:
    campaign_id = uuid.uuid4()
    secret = settings.media_dir.parent / "secret.txt"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text("no")
    for path in (
        f"/media/{campaign_id}/{uuid.uuid4()}.png",
        f"/media/{campaign_id}/..%2F..%2Fsecret.txt",
        "/media/../secret.txt",
        f"/media/not-a-campaign/{uuid.uuid4()}.png",
        f"/media/{campaign_id}/{uuid.uuid4()}.exe",
    ):
        assert (await client.get(path)).status_code == 404, path


# The rules on plain bytes


def test_formats_are_kept_and_gifs_become_pngs() -> None:
    assert prepare_image(picture("PNG")).extension == "png"
    assert prepare_image(picture("JPEG")).extension == "jpg"
    assert prepare_image(picture("WEBP")).extension == "webp"
    assert prepare_image(picture("GIF")).extension == "png"
    transparent = prepare_image(picture("PNG", mode="RGBA"))
    assert Image.open(io.BytesIO(transparent.content)).mode == "RGBA"


def test_big_pictures_are_scaled_down() -> None:
    prepared = prepare_image(picture("PNG", size=(6000, 1500)))
    assert (prepared.width, prepared.height) == (3000, 750)


@pytest.mark.parametrize("size", [(10_000, 5_000), (20_000, 20_000)])
def test_decompression_bombs_are_refused(size: tuple[int, int]) -> None:
    bomb = picture("PNG", size=size, mode="1")
    assert len(bomb) < MAX_IMAGE_BYTES
    with pytest.raises(InvalidInput) as refused:
        prepare_image(bomb)
    assert refused.value.errors[0].field == "file" and "pixels" in refused.value.errors[0].message
