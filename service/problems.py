"""RFC 9457 problem documents: the one renderer for every error the API answers."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from campaigns.errors import FieldError, KindlingError

PROBLEM_CONTENT_TYPE = "application/problem+json"

_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "You may not do this",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict with the current state",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "The request has invalid fields",
    429: "Too many attempts",
    500: "Internal server error",
    503: "Service unavailable",
}

_TYPES = {
    400: "bad-request",
    401: "not-authenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "too-many-requests",
    500: "internal-error",
    503: "service-unavailable",
}


def problem_response(
    status: int,
    *,
    type: str | None = None,
    title: str | None = None,
    detail: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": type or _TYPES.get(status, "error"),
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail or title or _TITLES.get(status, "Error"),
        "errors": [{"field": e.field, "message": e.message} for e in errors or []],
    }
    return Response(
        json.dumps(body, ensure_ascii=False), status_code=status, media_type=PROBLEM_CONTENT_TYPE, headers=headers
    )


def problem_from_error(error: KindlingError) -> Response:
    headers = {"Retry-After": str(error.retry_after)} if hasattr(error, "retry_after") else None
    return problem_response(
        error.status, type=error.type, title=error.title, detail=error.detail, errors=error.errors, headers=headers
    )
