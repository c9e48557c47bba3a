"""Two-factor for those who hold money: a TOTP authenticator app, and ten one-time recovery codes.

Operators and admins must have it before they act as such (`require_two_factor`); anyone may set it up. Once it is
on, a log-in asks for a code (`check_second_factor`), and no code is taken twice: the last accepted time step is kept
and only a later one passes, by one conditional UPDATE.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pyotp
import segno
from sqlalchemy import func, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.errors import Conflict, InvalidInput, KindlingError, NotAllowed
from campaigns.models import RecoveryCode, User

ISSUER = "Kindling"
RECOVERY_CODES = 10
# A code from the step before or after the server's clock is still taken: phones drift.
DRIFT_STEPS = 1
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


class TwoFactorSetupRequired(NotAllowed):
    type = "two-factor-setup-required"
    title = "Set up two-factor authentication first"


class TwoFactorRequired(KindlingError):
    status = 401
    type = "two-factor-required"
    title = "A code from your authenticator app is needed"


class TwoFactorActive(Conflict):
    type = "two-factor-active"
    title = "Two-factor authentication is already on"


class TwoFactorNotStarted(Conflict):
    type = "two-factor-not-started"
    title = "Start two-factor set-up first"


@dataclass(frozen=True)
class Enrolment:
    secret: str
    otpauth_uri: str


def has_two_factor(user: User) -> bool:
    return user.two_factor_enabled_at is not None


def require_two_factor(user: User) -> None:
    """For every operator or admin action: 403 `two-factor-setup-required` until the actor has set it up."""
    if not has_two_factor(user):
        raise TwoFactorSetupRequired(
            "Operators and admins act only with two-factor authentication: set it up at /me/two-factor "
            "(or POST /api/v1/me/two-factor) first."
        )


def otpauth_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_code_svg(uri: str) -> str:
    """The `otpauth://` link as an SVG QR code, for the authenticator app's camera."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=5, border=2, xmldecl=False, svgns=True)
    return buffer.getvalue().decode()


async def begin_two_factor(session: AsyncSession, user: User) -> Enrolment:
    """A new secret for the user's authenticator app; nothing changes at log-in until it is confirmed with a code."""
    if has_two_factor(user):
        raise TwoFactorActive("Two-factor authentication is already on for this account.")
    secret = pyotp.random_base32()
    user.totp_secret = secret
    user.totp_last_step = None
    await session.flush()
    return Enrolment(secret, otpauth_uri(user, secret))


async def confirm_two_factor(session: AsyncSession, user: User, code: str) -> list[str]:
    """Turn two-factor on with a first code from the app. Returns the recovery codes, shown this once only."""
    if has_two_factor(user):
        raise TwoFactorActive("Two-factor authentication is already on for this account.")
    if user.totp_secret is None:
        raise TwoFactorNotStarted("Start set-up first (POST /api/v1/me/two-factor) and scan the code it gives.")
    if not await _take_totp(session, user, code):
        raise InvalidInput("code", "is not the current code of your authenticator app; try the next one")
    await session.execute(update(User).where(User.id == user.id).values(two_factor_enabled_at=func.now()))
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODES)]
    session.add_all(RecoveryCode(user_id=user.id, code_hash=_hash_code(code)) for code in codes)
    await session.flush()
    await session.refresh(user)
    return codes


async def check_second_factor(session: AsyncSession, user: User, otp: str | None) -> None:
    """The one check between "the password is right" and a session or token: nothing for a user without two-factor;
    otherwise a fresh code of their app, or one unused recovery code (then spent). 401 `two-factor-required`."""
    if not has_two_factor(user):
        return
    if otp and (await _take_totp(session, user, otp) or await _take_recovery_code(session, user, otp)):
        return
    raise TwoFactorRequired(
        "Give the 6-digit code of your authenticator app (or one of your recovery codes) as `otp`."
        if not otp
        else "That code is wrong or was used already; give the current code of your authenticator app."
    )


async def enrol_with_known_secret(session: AsyncSession, user: User, secret: str) -> None:
    """Two-factor on with a secret given out in advance: only for the demo's accounts, whose key the README prints."""
    if has_two_factor(user):
        return
    user.totp_secret = secret
    user.two_factor_enabled_at = datetime.now(UTC)
    await session.flush()


async def _take_totp(session: AsyncSession, user: User, code: str) -> bool:
    """Accept `code` when it is the app's code for a step near now that is later than the last accepted one."""
    digits = "".join(code.split())
    if user.totp_secret is None or not digits.isdigit() or len(digits) != 6:
        return False
    totp = pyotp.TOTP(user.totp_secret)
    now_step = int(time.time()) // totp.interval
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.at(step * totp.interval), digits):
            taken = await session.scalar(
                update(User)
                .where(User.id == user.id, or_(User.totp_last_step.is_(None), User.totp_last_step < step))
                .values(totp_last_step=step)
                .returning(User.id)
            )
            return taken is not None
    return False


async def _take_recovery_code(session: AsyncSession, user: User, code: str) -> bool:
    spent = await session.scalar(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _hash_code(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=func.now())
        .returning(RecoveryCode.id)
    )
    return spent is not None


def _new_recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def _hash_code(code: str) -> str:
    normalised = "".join(code.lower().split()).replace("-", "")
    return hashlib.sha256(normalised.encode()).hexdigest()
