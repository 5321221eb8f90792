"""The client of the netns lab: starts one TCP request to HOST:PORT every `interval`
seconds, whatever happened to the previous ones, and prints one line per request:
`START END ok|fail ANSWER` (monotonic seconds, shared by every process of the machine).
Bounded: it stops after `duration` seconds and never has more than MAX_INFLIGHT requests
open.

Usage: python prober.py HOST PORT INTERVAL DURATION
"""

from __future__ import annotations

import asyncio
import sys
import time

MAX_INFLIGHT = 200
TIMEOUT = 1.0


async def one(host: str, port: int, gate: asyncio.Semaphore) -> None:
    start = time.monotonic()
    answer = "-"
    ok = False
    try:
        async with gate:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), TIMEOUT)
            try:
                line = await asyncio.wait_for(reader.readline(), TIMEOUT)
                answer = line.decode().strip() or "-"
                ok = bool(line)
            finally:
                writer.close()
    except (OSError, TimeoutError):
        pass
    print(f"{start:.6f} {time.monotonic():.6f} {'ok' if ok else 'fail'} {answer}", flush=True)


async def main(host: str, port: int, interval: float, duration: float) -> None:
    gate = asyncio.Semaphore(MAX_INFLIGHT)
    tasks = []
    end = time.monotonic() + duration
    next_at = time.monotonic()
    while next_at < end:
        tasks.append(asyncio.create_task(one(host, port, gate)))
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    await asyncio.gather(*tasks)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])))
