"""Languages: every message has its Chinese, money and dates follow the reader's locale, the language is chosen well."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from service.i18n import date, money, money_short, negotiate, use_locale

ROOT = Path(__file__).resolve().parent.parent
CATALOG_DIR = ROOT / "service" / "locale" / "zh_CN" / "LC_MESSAGES"


def extracted_messages() -> dict[str, list[str]]:
    """Every msgid in our Python and templates, as `pybabel extract -F babel.cfg` finds them, with where each is."""
    with open(ROOT / "babel.cfg") as config:
        method_map, options_map = parse_mapping_cfg(config)
    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(ROOT, method_map, options_map):
        msgid = message if isinstance(message, str) else message[0]
        if msgid:
            found.setdefault(msgid, []).append(f"{filename}:{lineno}")
    return found


def chinese_catalog() -> Catalog:
    with open(CATALOG_DIR / "messages.po", "rb") as po:
        return read_po(po, locale="zh_CN")


def test_every_message_has_a_chinese_translation() -> None:
    messages = extracted_messages()
    assert "Log in" in messages and "This field is required." in messages, "extraction found our messages"
    catalog = chinese_catalog()
    missing = []
    for msgid, places in sorted(messages.items()):
        entry = catalog.get(msgid)
        strings = [] if entry is None else [entry.string] if isinstance(entry.string, str) else list(entry.string)
        if entry is None or entry.fuzzy or not strings or not all(s.strip() for s in strings):
            missing.append(f"{msgid!r} ({places[0]})")
    assert not missing, "add these to service/locale/zh_CN/LC_MESSAGES/messages.po:\n" + "\n".join(missing)


def test_translations_keep_their_placeholders() -> None:
    problems = [f"{message.id!r}: {errors}" for message, errors in chinese_catalog().check() if errors]
    assert not problems, "\n".join(problems)


def _entries(catalog: Catalog) -> dict[object, object]:
    def plain(value: object) -> object:
        return tuple(value) if isinstance(value, list | tuple) else value

    return {plain(m.id): plain(m.string) for m in catalog if m.id and not m.fuzzy}


def test_the_compiled_catalog_is_up_to_date() -> None:
    with open(CATALOG_DIR / "messages.mo", "rb") as mo:
        compiled = _entries(read_mo(mo))
    written = _entries(chinese_catalog())
    assert compiled == written, "run `make catalogs` (pybabel compile -d service/locale -D messages)"


def test_money_is_formatted_for_the_readers_locale() -> None:
    with use_locale("zh_CN"):
        assert money(250_000, "CNY") == "¥2,500.00"
        assert money(199, "USD") == "US$1.99"
        assert money(5_000, "JPY") == "JP¥5,000"
        assert money_short(250_070, "CNY") == "¥2,501"
    with use_locale("en"):
        assert money(250_000, "USD") == "$2,500.00"
        # CLDR's English symbol for yuan tells it apart from yen.
        assert money(250_000, "CNY") == "CN¥2,500.00"
        assert money(5_000, "JPY") == "¥5,000"
        assert money_short(123_456, "USD") == "$1,235"


def test_currencies_without_a_minor_unit_have_no_decimals() -> None:
    for locale in ("en", "zh_CN"):
        with use_locale(locale):
            assert money(5_000, "JPY").endswith("5,000")
            assert money_short(5_000, "JPY").endswith("5,000")
            assert money(12_345, "KRW").endswith("12,345")
            assert money(1_500, "BHD").endswith("1.500"), "three decimals for the dinar"


def test_dates_follow_the_locale() -> None:
    moment = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    with use_locale("en"):
        assert date(moment) == "1 Mar 2026"
    with use_locale("zh_CN"):
        assert date(moment) == "2026年3月1日"


def test_accept_language_is_negotiated_by_quality() -> None:
    assert negotiate("zh-CN,zh;q=0.9,en;q=0.8") == "zh_CN"
    assert negotiate("en;q=0.5, zh-Hans-CN;q=0.9") == "zh_CN"
    assert negotiate("fr-FR, de;q=0.8") == "en"
    assert negotiate("en-GB") == "en"
    assert negotiate(None) == "en"


async def test_accept_language_zh_cn_gets_the_chinese_site(client: httpx.AsyncClient, engine: object) -> None:
    page = await client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert page.headers["content-language"] == "zh-CN"
    assert '<html lang="zh-CN">' in page.text and "发现" in page.text and "登录" in page.text
    english = await client.get("/", headers={"Accept-Language": "en-US"})
    assert english.headers["content-language"] == "en" and "Discover" in english.text


async def test_the_language_links_stay_on_the_site_whatever_the_path(client: httpx.AsyncClient, engine: object) -> None:
    # A path that starts with two slashes: a link built from it would be protocol-relative, to evil.example.
    missing = await client.get(httpx.URL(str(client.base_url).rstrip("/") + "//evil.example"), params={"q": "a b"})
    assert missing.status_code == 404 and missing.request.url.path == "//evil.example"
    assert 'href="?q=a+b&amp;lang=zh_CN"' in missing.text and 'href="?q=a+b&amp;lang=en"' in missing.text
    assert "evil.example" not in missing.text


async def test_the_switcher_sets_a_cookie_that_wins_over_accept_language(
    client: httpx.AsyncClient, engine: object
) -> None:
    english = {"Accept-Language": "en-US"}
    home = await client.get("/?ref=mail", headers=english)
    assert 'href="?ref=mail&amp;lang=zh_CN"' in home.text
    assert 'href="?ref=mail&amp;lang=en"' in home.text and 'lang="en" hreflang="en" aria-current="true"' in home.text

    switched = await client.get("/?lang=zh_CN", headers=english)
    assert "lang=zh_CN" in switched.headers["set-cookie"]
    assert '<html lang="zh-CN">' in switched.text
    remembered = await client.get("/spaces", headers=english)
    assert '<html lang="zh-CN">' in remembered.text and "创客空间" in remembered.text

    back = await client.get("/?lang=en", headers={"Accept-Language": "zh-CN"})
    assert "lang=en" in back.headers["set-cookie"]
    assert '<html lang="en">' in (await client.get("/", headers={"Accept-Language": "zh-CN"})).text
