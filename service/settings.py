"""The environment, read once and checked before anything starts."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class SettingsError(Exception):
    """One line naming the variable and what it should hold."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    database_url: str
    redis_url: str
    stripe_secret_key: str
    stripe_publishable_key: str
    stripe_webhook_secret: str
    stripe_api_base: str | None
    stripe_js_url: str
    secret_key: str
    base_url: str
    day_seconds: int
    address_survey_days: int
    sweep_seconds: float
    platform_fee_bps: int
    pledge_hold_seconds: int
    token_days: int
    # 0: no limit (a site whose backers share one address, behind a proxy that hides theirs)
    max_open_holds: int
    stripe_rate: float
    charge_doubt_hours: int
    smtp_url: str | None
    mail_from: str
    media_dir: Path
    dev: bool
    # Proxies whose X-Forwarded-For is believed; nobody's by default.
    trusted_proxies: tuple[Network, ...] = ()
    # How long a request may take to send an upload's body (images, tracking files) before it is answered 408.
    upload_seconds: float = 30
    # Days after a package ships that the sweep erases its pledge's address (real days: a legal period, not a demo's).
    address_retention_days: int = 180
    # The design log's Ed25519 key, base64 of its 32 raw bytes; empty: derived from secret_key (campaigns.transparency).
    log_signing_key: str = ""
    # Each person may post this many comments in any window of this many seconds (campaigns.talk.comments).
    comments_per_window: int = 10
    comment_window_seconds: int = 600

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def address_survey_seconds(self) -> int:
        """How long backers have to answer the address survey before the address lock may fall (campaign days)."""
        return self.address_survey_days * self.day_seconds


def _required(env: Mapping[str, str], name: str, expected: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"{name} is required: {expected}")
    return value


def _integer(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number from {low} to {high}, not {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be a whole number from {low} to {high}, not {raw!r}")
    return value


def _number(env: Mapping[str, str], name: str, default: float, *, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number from {low:g} to {high:g}, not {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be a number from {low:g} to {high:g}, not {raw!r}")
    return value


def _url(env: Mapping[str, str], name: str, schemes: tuple[str, ...], *, default: str | None = None) -> str | None:
    raw = env.get(name, "").strip() or default
    if raw is None:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in schemes or not (parts.netloc or parts.query):
        raise SettingsError(f"{name} must be a {' or '.join(s + '://' for s in schemes)} URL, not {raw!r}")
    return raw


def _networks(env: Mapping[str, str], name: str) -> tuple[Network, ...]:
    raw = env.get(name, "").strip()
    networks = []
    for part in filter(None, (piece.strip() for piece in raw.split(","))):
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise SettingsError(
                f"{name} must be IP addresses or networks separated by commas (10.0.0.1, 10.1.0.0/16), not {part!r}"
            ) from None
    return tuple(networks)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    database_url = _url(env, "DATABASE_URL", ("postgresql+asyncpg",))
    if database_url is None:
        raise SettingsError("DATABASE_URL is required: postgresql+asyncpg://user:password@host/dbname")
    redis_url = _url(env, "REDIS_URL", ("redis", "rediss"))
    if redis_url is None:
        raise SettingsError("REDIS_URL is required: redis://host:port/0")
    secret_key = _required(env, "KINDLING_SECRET_KEY", "a long random string that signs sessions and CSRF tokens")
    if len(secret_key) < 16:
        raise SettingsError("KINDLING_SECRET_KEY must be at least 16 characters long")
    stripe_secret_key = _required(env, "STRIPE_SECRET_KEY", "the secret key of the Stripe account (sk_...)")
    if not stripe_secret_key.startswith(("sk_", "rk_")):
        raise SettingsError("STRIPE_SECRET_KEY must be a Stripe secret key starting with sk_ or rk_")
    stripe_api_base = _url(env, "STRIPE_API_BASE", ("http", "https"))
    default_js = (
        (stripe_api_base.rstrip("/") + "/js.stripe.com/v3/") if stripe_api_base else "https://js.stripe.com/v3/"
    )
    base_url = _url(env, "KINDLING_BASE_URL", ("http", "https"), default="http://127.0.0.1:8000")
    assert base_url is not None
    smtp_url = _url(env, "SMTP_URL", ("smtp", "smtps"))
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        stripe_secret_key=stripe_secret_key,
        stripe_publishable_key=_required(env, "STRIPE_PUBLISHABLE_KEY", "the publishable key (pk_...)"),
        stripe_webhook_secret=_required(
            env, "STRIPE_WEBHOOK_SECRET", "the webhook endpoint's signing secret (whsec_...)"
        ),
        stripe_api_base=stripe_api_base,
        stripe_js_url=env.get("KINDLING_STRIPE_JS_URL", "").strip() or default_js,
        secret_key=secret_key,
        base_url=base_url.rstrip("/"),
        day_seconds=_integer(env, "KINDLING_DAY_SECONDS", 86400, low=1, high=86400 * 7),
        address_survey_days=_integer(env, "KINDLING_ADDRESS_SURVEY_DAYS", 14, low=1, high=365),
        sweep_seconds=_number(env, "KINDLING_SWEEP_SECONDS", 15, low=0.1, high=3600),
        platform_fee_bps=_integer(env, "KINDLING_PLATFORM_FEE_BPS", 500, low=0, high=5000),
        token_days=_integer(env, "KINDLING_TOKEN_DAYS", 90, low=1, high=3650),
        pledge_hold_seconds=_integer(env, "KINDLING_PLEDGE_HOLD_SECONDS", 900, low=1, high=86400 * 7),
        max_open_holds=_integer(env, "KINDLING_MAX_OPEN_HOLDS", 5, low=0, high=1000),
        stripe_rate=_number(env, "KINDLING_STRIPE_RATE", 20, low=0.1, high=10000),
        charge_doubt_hours=_integer(env, "KINDLING_CHARGE_DOUBT_HOURS", 24, low=1, high=24 * 30),
        smtp_url=smtp_url,
        mail_from=env.get("KINDLING_MAIL_FROM", "").strip() or "Kindling <hello@kindling.localhost>",
        media_dir=Path(env.get("KINDLING_MEDIA_DIR", "").strip() or ".kindling/media").resolve(),
        dev=env.get("KINDLING_DEV", "") == "1",
        trusted_proxies=_networks(env, "KINDLING_TRUSTED_PROXIES"),
        upload_seconds=_number(env, "KINDLING_UPLOAD_SECONDS", 30, low=0.1, high=3600),
        address_retention_days=_integer(env, "KINDLING_ADDRESS_RETENTION_DAYS", 180, low=1, high=3650),
        log_signing_key=_ed25519_key(env, "KINDLING_LOG_SIGNING_KEY"),
        comments_per_window=_integer(env, "KINDLING_COMMENTS_PER_WINDOW", 10, low=1, high=10_000),
        comment_window_seconds=_integer(env, "KINDLING_COMMENT_WINDOW_SECONDS", 600, low=1, high=86400 * 7),
    )


def _ed25519_key(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        return ""
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) != 32:
        raise SettingsError(f"{name} must be the base64 of an Ed25519 private key's 32 raw bytes")
    return value


def environment_of(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment a `kindling` process needs to run with `settings`, and no other Kindling variable: what
    `load_settings` reads back as the same settings (tests and benchmarks start real processes with it)."""
    ours = ("DATABASE_URL", "REDIS_URL", "SMTP_URL", "STRIPE_", "KINDLING_")
    env = {name: value for name, value in os.environ.items() if not name.startswith(ours)}
    env.update(
        {
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url,
            "KINDLING_SECRET_KEY": settings.secret_key,
            "STRIPE_SECRET_KEY": settings.stripe_secret_key,
            "STRIPE_PUBLISHABLE_KEY": settings.stripe_publishable_key,
            "STRIPE_WEBHOOK_SECRET": settings.stripe_webhook_secret,
            "STRIPE_API_BASE": settings.stripe_api_base or "",
            "KINDLING_STRIPE_JS_URL": settings.stripe_js_url,
            "KINDLING_BASE_URL": settings.base_url,
            "KINDLING_DAY_SECONDS": str(settings.day_seconds),
            "KINDLING_ADDRESS_SURVEY_DAYS": str(settings.address_survey_days),
            "KINDLING_SWEEP_SECONDS": str(settings.sweep_seconds),
            "KINDLING_PLATFORM_FEE_BPS": str(settings.platform_fee_bps),
            "KINDLING_PLEDGE_HOLD_SECONDS": str(settings.pledge_hold_seconds),
            "KINDLING_TOKEN_DAYS": str(settings.token_days),
            "KINDLING_MAX_OPEN_HOLDS": str(settings.max_open_holds),
            "KINDLING_STRIPE_RATE": str(settings.stripe_rate),
            "KINDLING_CHARGE_DOUBT_HOURS": str(settings.charge_doubt_hours),
            "KINDLING_MAIL_FROM": settings.mail_from,
            "KINDLING_MEDIA_DIR": str(settings.media_dir),
            "KINDLING_DEV": "1" if settings.dev else "",
            "SMTP_URL": settings.smtp_url or "",
            "KINDLING_TRUSTED_PROXIES": ",".join(str(network) for network in settings.trusted_proxies),
            "KINDLING_UPLOAD_SECONDS": str(settings.upload_seconds),
            "KINDLING_ADDRESS_RETENTION_DAYS": str(settings.address_retention_days),
            "KINDLING_LOG_SIGNING_KEY": settings.log_signing_key,
            "KINDLING_COMMENTS_PER_WINDOW": str(settings.comments_per_window),
            "KINDLING_COMMENT_WINDOW_SECONDS": str(settings.comment_window_seconds),
        }
    )
    env.update(overrides)
    return env
