"""Requests on the hot path, served past FastAPI's per-request machinery.

Accepting a resident's message is what every message of the system goes through first.
Measured under load (``bench.load``), the web process spent as much CPU a message in
FastAPI's layers (its exception and exit-stack middleware, matching against every route,
dependency solving, request and response models) as in accepting the message itself, and
its event loop was the first part of the path to run out of CPU. So the few routes that
matter are plain Starlette routes, and this middleware hands them their requests directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send


class HotRoutes:
    """ASGI middleware: an HTTP request that one of ``routes`` matches fully is handled by
    it; everything else goes on to ``app``. Errors a hot route raises are rendered by
    ``handlers`` (pass the app's ``exception_handlers``: the same bodies as its other
    routes), and anything else propagates to the server-error middleware outside this one.

    Added with ``app.add_middleware``, so it runs inside FastAPI's server-error middleware
    and outside everything else: middleware added to the app later wraps this one.
    """

    def __init__(self, app: ASGIApp, routes: Sequence[Route], handlers: Mapping[Any, Any]) -> None:
        self.app = app
        self.routes = tuple(routes)
        self.handlers: tuple[dict[Any, Any], dict[int, Any]] = (dict(handlers), {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route in self.routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope = {
                        **scope,
                        **child,
                        "starlette.exception_handlers": self.handlers,
                    }
                    await route.handle(scope, receive, send)
                    return
        await self.app(scope, receive, send)
