"""The Jinja2 environment: autoescaped, translated through the request's locale, money and dates through Babel."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from service import i18n

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"


@cache
def create_templates(*, dev: bool = False, stripe_js_url: str = "") -> Environment:
    """One environment for each (dev, stripe_js_url), made once per process: it holds the compiled templates, and
    compiling them is the slow part (seconds for all of them). Every app in the process (the tests make hundreds)
    shares them."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(["html", "xml"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["money"] = i18n.money
    env.filters["money_short"] = i18n.money_short
    env.filters["number"] = i18n.number
    env.filters["date"] = i18n.date
    env.filters["datetime"] = i18n.datetime_
    env.filters["month"] = i18n.month
    env.filters["postal_address"] = i18n.postal_address
    env.globals["current_locale"] = i18n.current_locale.get
    env.globals["locales"] = i18n.LOCALE_NAMES
    env.globals["dev"] = dev
    env.globals["stripe_js_url"] = stripe_js_url
    return env
