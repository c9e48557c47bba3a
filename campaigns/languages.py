"""Which language a text is written in, and which version of it a reader is shown.

Makers' texts (a campaign's title, summary and story, its tiers and products, its updates) and operators' notes record
the language they are written in; a maker may add versions of the campaign's and an update's texts in the other
language. A reader is shown the version in their own language when there is one, otherwise the original, which then
says what it is written in (pages mark it with `lang` for screen readers and the browser's translation).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from campaigns.models import TEXT_LANGUAGES
from campaigns.story import render_story

UNKNOWN_LANGUAGE = f"must be one of the languages Kindling knows: {', '.join(TEXT_LANGUAGES)}"


class Written(str):
    """A text as shown to a reader: a string that also knows the language it is written in."""

    language: str

    def __new__(cls, text: str, language: str) -> Written:
        written = super().__new__(cls, text)
        written.language = language
        return written


def language_of(locale: str | None) -> str:
    """The text language a person's account language stands for (English when it names none Kindling knows)."""
    return locale if locale in TEXT_LANGUAGES else TEXT_LANGUAGES[0]


def known_translations(translations: Mapping[str, Any]) -> Mapping[str, Any]:
    """`translations` when each key is a language Kindling knows; a ValueError naming the stranger otherwise."""
    for language in translations:
        if language not in TEXT_LANGUAGES:
            raise ValueError(f"{language!r} {UNKNOWN_LANGUAGE}")
    return translations


def version_for(
    reader: str, field: str, original: str, language: str, translations: Mapping[str, Any] | None = None
) -> Written:
    """`field` as the reader is shown it: the maker's version in the reader's language if they gave one, else the
    original in its own language."""
    if reader != language:
        translated = ((translations or {}).get(reader) or {}).get(field)
        if translated:
            return Written(str(translated), reader)
    return Written(original, language)


def stored_versions(
    translations: Mapping[str, Mapping[str, Any]], *, story: str | None = None
) -> dict[str, dict[str, str]]:
    """The versions in other languages as they are kept: texts left empty dropped, and the Markdown one (`story`, if
    the row keeps its story rendered) also kept rendered and sanitised, as `<story>_html`."""
    stored: dict[str, dict[str, str]] = {}
    for language, texts in translations.items():
        version = {field: str(text) for field, text in texts.items() if text}
        if story is not None and story in version:
            version[f"{story}_html"] = render_story(version[story])
        if version:
            stored[language] = version
    return stored


# The fact of a mail that holds the maker's versions of its texts, by language: {"zh_CN": {"campaign_title": ...}}.
# The mail is rendered in its reader's language and shows theirs where there is one (service/mail.py).
VERSIONS_FACT = "versions"


def mail_versions(texts: Mapping[str, tuple[str, Mapping[str, Any] | None]]) -> dict[str, dict[str, str]]:
    """The versions fact of a mail: for each fact named in `texts`, (the field of the row it shows, the row's
    translations) gives the maker's version of it in each language they wrote one in."""
    versions: dict[str, dict[str, str]] = {}
    for fact, (field, translations) in texts.items():
        for language, version in (translations or {}).items():
            if (version or {}).get(field):
                versions.setdefault(language, {})[fact] = str(version[field])
    return versions
