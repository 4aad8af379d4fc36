"""Websocket clients of the bench, in a process of their own: `python -m goals.bench.sockets <ws url> <origin>`.

Reads one "<cookie header>" line per socket on stdin (then an empty line), opens them all, prints "ready <n>", then
prints "<marker> <time_ns>" for every message carrying a `bench-marker-…` word, and closes when stdin closes.
The times are `time.monotonic_ns()`: CLOCK_MONOTONIC on Linux, one clock for every process of the machine, so
the bench compares them with the time it opened a request in another process. Running apart from the bench (and
from daphne) keeps the clients' own work out of the code being measured, and theirs out of it.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time

import aiohttp

MARKER = re.compile(r"bench-marker-[\w-]+")


async def listen(socket, out) -> None:
    async for message in socket:
        arrived = time.monotonic_ns()
        if isinstance(message.data, str) and (found := MARKER.search(message.data)):
            out.write(f"{found.group()} {arrived}\n")
            out.flush()


async def main(url: str, origin: str, cookies: list[str]) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:  # a connection each
        sockets = [await session.ws_connect(url, headers={"Origin": origin, "Cookie": cookie}, max_msg_size=0)
                   for cookie in cookies]
        listeners = [asyncio.create_task(listen(socket, sys.stdout)) for socket in sockets]
        sys.stdout.write(f"ready {len(sockets)}\n")
        sys.stdout.flush()
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the bench closes stdin
        for socket in sockets:
            await socket.close()
        await asyncio.gather(*listeners, return_exceptions=True)


if __name__ == "__main__":
    header_lines = []
    for line in sys.stdin:
        if not line.strip():
            break
        header_lines.append(line.strip())
    asyncio.run(main(sys.argv[1], sys.argv[2], header_lines))
