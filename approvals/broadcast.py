"""The one way sync code (views, signal receivers, celery tasks) sends events to the people's open pages.

A broadcast is one message published on the live channel (Redis pub/sub), whatever the number of people and
sockets: each daphne process receives it once and hands every person's event to the sockets it holds for them
(`approvals.consumers.LiveSockets`). Not one channel-layer message per socket, which made the fan-out the
slowest part of a live update.
"""

import json
import logging
import os
import threading
from collections.abc import Iterable
from typing import Literal, TypedDict

from django.conf import settings

from config.pubsub import channel_name

log = logging.getLogger(__name__)

# A Redis that does not answer in time is treated as down: the caller (often a decision) must not wait.
SEND_TIMEOUT_S = 2.0


class FragmentEvent(TypedDict):
    """Server-rendered HTML for the htmx websocket extension: each top-level element swaps in out of band."""

    type: Literal["fragment"]  # handled by UserEventsConsumer.fragment
    html: str


def user_group(user_id: int) -> str:
    """The channel group that carries one user's events to every device they have open."""
    return f"user-{user_id}"


def live_channel() -> str:
    """The pub/sub channel every daphne process listens to for live events."""
    return channel_name("live")


def fragment(html: str) -> FragmentEvent:
    return {"type": "fragment", "html": html}


def broadcast(user_ids: Iterable[int], event: FragmentEvent) -> bool:
    """Send the event to every open socket of each user; best effort: logs and returns False, never raises."""
    return broadcast_each([(user_id, event) for user_id in sorted(set(user_ids))])


def broadcast_each(events: list[tuple[int, FragmentEvent]]) -> bool:
    """Send each (user id, event) pair in one message, in order; best effort like `broadcast`."""
    if not events:
        return True
    message = json.dumps([[user_id, dict(event)] for user_id, event in events])
    try:
        _redis().publish(live_channel(), message)
    except Exception:  # Redis down or slow: the page catches up when its socket reconnects.
        log.warning("could not broadcast %d event(s)", len(events), exc_info=True)
        return False
    return True


_client = None
_client_key: tuple[int, str] = (0, "")
_client_lock = threading.Lock()


def _redis():
    """One client per process (its pool reused by every broadcast; a forked worker makes its own)."""
    global _client, _client_key
    with _client_lock:
        key = (os.getpid(), settings.REDIS_URL)
        if _client is None or _client_key != key:
            import redis

            _client = redis.Redis.from_url(
                settings.REDIS_URL, socket_connect_timeout=SEND_TIMEOUT_S, socket_timeout=SEND_TIMEOUT_S
            )
            _client_key = key
        return _client
