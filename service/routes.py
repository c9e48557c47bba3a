"""The one API router every endpoint module declares its operations on."""

from __future__ import annotations

from service.api import ApiRouter

api = ApiRouter()
