"""The product's web app with one more route, for bench/page.py only: `GET /bench/bare`, a bare Starlette JSON endpoint
(no database, no template) behind the same middleware, in the same server, as the reference the campaign page is
measured against. The product never serves it.

    python -m bench.page_app --port 8123 --workers 2

is `kindling serve --port 8123 --workers 2` with `bench.page_app:app` in place of `service.asgi:app`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

BARE_PATH = "/bench/bare"
BARE_BODY = {"id": "00000000-0000-0000-0000-000000000000", "title": "Bare", "status": "live", "pledged": 0}


async def bare(request: Request) -> Response:
    return JSONResponse(BARE_BODY)


def _app() -> object:
    from service.asgi import app as product  # configures logging and reads the settings, as `kindling serve` does

    product.router.routes.insert(0, Route(BARE_PATH, bare, methods=["GET"]))
    return product


def __getattr__(name: str) -> object:
    # Built when uvicorn asks for `app`, not when this module is imported for BARE_PATH.
    if name == "app":
        return _app()
    raise AttributeError(name)


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.page_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    uvicorn.run(
        "bench.page_app:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,  # service.asgi configures logging
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
