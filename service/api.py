"""The JSON API's routing: each operation is declared once, and that declaration validates, routes and documents it."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns.errors import FieldError, KindlingError, ValidationFailed
from service.idempotency import run_idempotently
from service.web import SAFE_METHODS, current_user, read_body, uow

JSON_BODY_LIMIT = 256 * 1024

Endpoint = Callable[..., Awaitable[Response]]


class MalformedJson(KindlingError):
    status = 400
    type = "malformed-json"
    title = "The body is not valid JSON"


class UnsupportedMediaType(KindlingError):
    status = 415
    type = "unsupported-media-type"
    title = "Send the body as application/json"


class PayloadTooLarge(KindlingError):
    status = 413
    type = "payload-too-large"
    title = "The request body is too large"


def field_errors(error: ValidationError) -> list[FieldError]:
    found = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "body"
        message = "unknown field" if item["type"] == "extra_forbidden" else item["msg"]
        found.append(FieldError(location, message))
    return found


M = TypeVar("M", bound=BaseModel)


def validate_model(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed("Some fields are invalid.", errors=field_errors(exc)) from None


def validate_json(model: type[M], raw: bytes) -> M:
    """A JSON body, taken strictly: JSON's own types only, so no "5", 5.0 or true for an integer and no number for a
    time. Query parameters, text by nature, go through `validate_model`."""
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        raise ValidationFailed("Some fields are invalid.", errors=field_errors(exc)) from None


async def read_json(request: Request) -> Any:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType("Send the body as application/json.")
    raw = await request.body()
    if len(raw) > JSON_BODY_LIMIT:
        raise PayloadTooLarge(f"A JSON body may be at most {JSON_BODY_LIMIT} bytes.")
    if not raw.strip():
        raise MalformedJson("The body is empty; send a JSON object.")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedJson(f"The body is not valid JSON: {exc}") from None
    nul = _path_to_nul(data)
    if nul is not None:
        # PostgreSQL text cannot hold NUL; no field of ours has a use for it.
        raise ValidationFailed("Some fields are invalid.", errors=[FieldError(nul or "body", "must not contain NUL")])
    return data


def _path_to_nul(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string (or key) holding a NUL character, if any."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return where
            found = _path_to_nul(item, where)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _path_to_nul(item, f"{path}.{index}" if path else str(index))
            if found is not None:
                return found
    return None


def json_response(content: BaseModel | dict[str, Any] | list[Any], status: int = 200) -> Response:
    if isinstance(content, BaseModel):
        payload = content.model_dump_json()
    else:
        payload = json.dumps(content, ensure_ascii=False, default=str)
    return Response(payload, status_code=status, media_type="application/json")


@dataclass
class Operation:
    method: str
    path: str
    endpoint: Endpoint
    summary: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: Any
    status: int
    auth: bool
    idempotent: bool
    tags: list[str]
    errors: tuple[int, ...]
    request_content: dict[str, Any] | None
    response_content: dict[str, Any] | None


@dataclass
class ApiRouter:
    prefix: str = "/api/v1"
    operations: list[Operation] = field(default_factory=list)

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: Any = None,
        status: int = 200,
        auth: bool = True,
        idempotent: bool = False,
        tags: list[str] | None = None,
        errors: tuple[int, ...] = (),
        request_content: dict[str, Any] | None = None,
        response_content: dict[str, Any] | None = None,
    ) -> Callable[[Endpoint], Endpoint]:
        """Declare an operation. With `body` the endpoint gets `body=` the validated model; with `query`, `query=`."""

        def register(endpoint: Endpoint) -> Endpoint:
            self.operations.append(
                Operation(
                    method,
                    path,
                    endpoint,
                    summary,
                    body,
                    query,
                    response,
                    status,
                    auth,
                    idempotent,
                    tags or [],
                    errors,
                    request_content,
                    response_content,
                )
            )
            return endpoint

        return register

    def routes(self) -> list[Route]:
        return [
            Route(self.prefix + op.path, _bind(op), methods=[op.method], name=op.endpoint.__name__)
            for op in self.operations
        ]


def _bind(op: Operation) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        kwargs: dict[str, Any] = {}
        if request.method not in SAFE_METHODS:
            # Before the endpoint can take a connection of the pool: a slow sender waits here, on its own.
            await read_body(request)
        try:
            if op.query is not None:
                kwargs["query"] = validate_model(op.query, dict(request.query_params))
            if op.body is not None:
                await read_json(request)
                kwargs["body"] = validate_json(op.body, await request.body())
        except KindlingError:
            if op.auth:
                # Who may not call this at all learns that first, not what is wrong with the body.
                await ensure_authenticated(request)
            raise
        if op.idempotent:
            return await run_idempotently(request, lambda: op.endpoint(request, **kwargs))
        return await op.endpoint(request, **kwargs)

    endpoint.__name__ = op.endpoint.__name__
    endpoint.__doc__ = op.endpoint.__doc__
    setattr(endpoint, "operation", op)  # noqa: B010 - the authorisation matrix reads it
    return endpoint


async def ensure_authenticated(request: Request) -> None:
    async with uow(request) as session:
        await current_user(request, session)


def _problem_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", "title", "status", "detail", "errors"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        },
    }


def openapi_document(router: ApiRouter, *, title: str, version: str) -> dict[str, Any]:
    models: list[tuple[Any, Any]] = []
    for op in router.operations:
        if op.body is not None:
            models.append((op.body, "validation"))
        if op.response is not None:
            models.append((op.response, "serialization"))
    keyed, defs = models_json_schema(models, ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    schemas["Problem"] = _problem_schema()
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}

    paths: dict[str, dict[str, Any]] = {}
    for op in router.operations:
        operation: dict[str, Any] = {"summary": op.summary, "operationId": op.endpoint.__name__, "tags": op.tags}
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_params(op.path)
        ]
        if op.query is not None:
            query_schema = op.query.model_json_schema()
            required = set(query_schema.get("required", []))
            for name, prop in query_schema.get("properties", {}).items():
                parameters.append({"name": name, "in": "query", "required": name in required, "schema": prop})
        if op.idempotent:
            parameters.append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                }
            )
        if parameters:
            operation["parameters"] = parameters
        if op.body is not None:
            schema = keyed[(op.body, "validation")]
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
        elif op.request_content is not None:
            operation["requestBody"] = {"required": True, "content": op.request_content}
        success: dict[str, Any] = {"description": op.summary}
        if op.response is not None:
            success["content"] = {"application/json": {"schema": keyed[(op.response, "serialization")]}}
        elif op.response_content is not None:
            success["content"] = op.response_content
        responses: dict[str, Any] = {str(op.status): success}
        # The body limit answers any request before it is routed: 400 for a malformed Content-Length, 413 over it.
        statuses = set(op.errors) | {400, 413}
        if op.auth:
            statuses |= {401}
        if op.body is not None or op.query is not None:
            statuses |= {422}
        if op.body is not None or op.request_content is not None:
            # A body sent too slowly (408), or not as the operation takes it (415).
            statuses |= {408, 415}
        if op.idempotent:
            # A key reused with another request (422), or while its first request still runs (409).
            statuses |= {409, 422}
        if _path_params(op.path):
            statuses |= {404}
        for status in sorted(statuses):
            responses[str(status)] = {"description": f"Problem ({status})", "content": problem}
        operation["responses"] = responses
        if op.auth:
            operation["security"] = [{"bearer": []}]
        paths.setdefault(router.prefix + op.path, {})[op.method.lower()] = operation

    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _path_params(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]
