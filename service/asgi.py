"""The application as uvicorn imports it (`kindling serve`, `uvicorn service.asgi:app`), built from the environment."""

from __future__ import annotations

import sys

from service.app import create_app
from service.logs import configure_logging
from service.settings import SettingsError, load_settings

configure_logging()
try:
    settings = load_settings()
except SettingsError as exc:
    print(f"kindling: {exc}", file=sys.stderr)
    raise SystemExit(2) from None

app = create_app(settings)
