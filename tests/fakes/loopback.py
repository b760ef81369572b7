"""What the HTTP fakes share: an aiohttp app on 127.0.0.1 (a free port), started and
stopped by ``start``/``stop`` or ``async with``.

A fake (a dataclass with ``port: int = 0`` and ``_runner: web.AppRunner | None = None``
fields of its own) adds its routes in ``routes``; one with waiters to wake overrides
``stop`` and calls this one.
"""

from __future__ import annotations

from types import TracebackType
from typing import ClassVar, Self

from aiohttp import web


class LoopbackApp:
    port: int
    _runner: web.AppRunner | None
    # How long ``stop`` lets requests still being answered finish (aiohttp's default: 60).
    shutdown_timeout: ClassVar[float] = 1.0

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> Self:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, shutdown_timeout=self.shutdown_timeout, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
