"""The one way sync code (views, signal receivers, celery tasks) sends events to the people's open pages."""

import asyncio
import logging
from collections.abc import Iterable
from typing import Literal, TypedDict

from asgiref.sync import async_to_sync
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
    groups = [user_group(user_id) for user_id in sorted(set(user_ids))]
    if not groups:
        return True
    try:
        layer = get_channel_layer()
        if layer is None:
            return False
        async_to_sync(_send_to_groups)(layer, groups, dict(event))
    except Exception:  # Redis down or slow: the page catches up when its socket reconnects.
        log.warning("could not broadcast %s to %d user(s)", event.get("type"), len(groups), exc_info=True)
        return False
    return True


async def _send_to_groups(layer, groups: list[str], event: dict) -> None:
    async with asyncio.timeout(SEND_TIMEOUT_S):
        for group in groups:
            await layer.group_send(group, event)
