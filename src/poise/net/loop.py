"""The event loop: uvloop when it is installed, the standard asyncio loop otherwise.

`POISE_LOOP=asyncio` forces the standard loop (the I/O tests run under both). The choice is
made once, here, so the rest of the code never cares which loop it runs on.
"""

from __future__ import annotations

import asyncio
import os


def loop_kind() -> str:
    wanted = os.environ.get("POISE_LOOP", "uvloop")
    if wanted == "uvloop":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            return "asyncio"
    return "asyncio" if wanted == "asyncio" else "uvloop"


def new_event_loop(kind: str | None = None) -> asyncio.AbstractEventLoop:
    kind = kind or loop_kind()
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()
