"""The one way sync code (views, signal receivers, celery tasks) sends events to the people's open pages."""

import asyncio
import logging
import os
import threading
from collections.abc import Iterable
from typing import Literal, TypedDict

from channels.layers import get_channel_layer

log = logging.getLogger(__name__)

# A channel layer that does not answer in time is treated as down: the caller (often a decision) must not wait.
SEND_TIMEOUT_S = 2.0


class FragmentEvent(TypedDict):
    """Server-rendered HTML for the htmx websocket extension: each top-level element swaps in out of band."""

    type: Literal["fragment"]  # handled by UserEventsConsumer.fragment
    html: str


def user_group(user_id: int) -> str:
    """The channel group that carries one user's events to every device they have open."""
    return f"user-{user_id}"


def fragment(html: str) -> FragmentEvent:
    return {"type": "fragment", "html": html}


def broadcast(user_ids: Iterable[int], event: FragmentEvent) -> bool:
    """Send the event to every open socket of each user; best effort: logs and returns False, never raises."""
    return broadcast_each([(user_id, event) for user_id in sorted(set(user_ids))])


def broadcast_each(events: list[tuple[int, FragmentEvent]]) -> bool:
    """Send each (user id, event) pair in one go; best effort like `broadcast`."""
    sends = [(user_group(user_id), dict(event)) for user_id, event in events]
    if not sends:
        return True
    try:
        layer = get_channel_layer()
        if layer is None:
            return False
        future = asyncio.run_coroutine_threadsafe(_send_to_groups(layer, sends), _sender_loop())
        future.result(timeout=SEND_TIMEOUT_S + 0.5)
    except Exception:  # Redis down or slow: the page catches up when its socket reconnects.
        log.warning("could not broadcast %d event(s)", len(sends), exc_info=True)
        return False
    return True


async def _send_to_groups(layer, sends: list[tuple[str, dict]]) -> None:
    """The groups at once (each group_send is four Redis round trips); one group's events in their order."""
    by_group: dict[str, list[dict]] = {}
    for group, event in sends:
        by_group.setdefault(group, []).append(event)

    async def send_in_order(group: str, events: list[dict]) -> None:
        for event in events:
            await layer.group_send(group, event)

    async with asyncio.timeout(SEND_TIMEOUT_S):
        await asyncio.gather(*(send_in_order(group, events) for group, events in by_group.items()))


_loop: asyncio.AbstractEventLoop | None = None
_loop_pid = 0
_loop_lock = threading.Lock()


def _sender_loop() -> asyncio.AbstractEventLoop:
    """One event loop per process, in a thread of its own, that keeps the channel layer's Redis connections.

    async_to_sync from a thread without a loop made a new loop, and so a new Redis connection, for every send:
    ~15 ms each on a busy machine, paid by every decision and every step. A forked worker starts its own.
    """
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid() or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="broadcast-loop", daemon=True).start()
            _loop, _loop_pid = loop, os.getpid()
        return _loop
