"""One hierarchy of errors for the whole domain; each knows its HTTP status and its problem type."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class KindlingError(Exception):
    status: int = 400
    type: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str | None = None, *, errors: list[FieldError] | None = None) -> None:
        self.detail = detail or self.title
        self.errors = errors or []
        super().__init__(self.detail)


class NotAuthenticated(KindlingError):
    status = 401
    type = "not-authenticated"
    title = "Authentication required"


class NotAllowed(KindlingError):
    status = 403
    type = "forbidden"
    title = "You may not do this"


class NotFound(KindlingError):
    status = 404
    type = "not-found"
    title = "Not found"


class Conflict(KindlingError):
    status = 409
    type = "conflict"
    title = "Conflict with the current state"


class InvalidInput(KindlingError):
    status = 422
    type = "validation-error"
    title = "The request has invalid fields"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", errors=[FieldError(field, message)])


class ValidationFailed(KindlingError):
    status = 422
    type = "validation-error"
    title = "The request has invalid fields"


class TooManyRequests(KindlingError):
    status = 429
    type = "too-many-requests"
    title = "Too many attempts"

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"Too many attempts; try again in {retry_after} seconds.")


class ServiceUnavailable(KindlingError):
    status = 503
    type = "service-unavailable"
    title = "A service Kindling depends on is unavailable"
