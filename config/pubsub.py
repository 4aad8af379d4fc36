"""One Redis pub/sub subscription per process (and event loop) for each channel that fans out inside the process.

A broadcast is published once; every process that holds a `Listener` on the channel receives it once and hands it
to its own waiters (open websockets, agents waiting on a decision) without another trip through Redis. Plumbing:
it imports no room; the rooms name the channel and say what a message means.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable

from django.conf import settings

log = logging.getLogger(__name__)

# How long the first holder waits for Redis to confirm the subscription before it gives up (Redis down).
READY_TIMEOUT_S = 2.0


def channel_name(suffix: str) -> str:
    """A pub/sub channel under the channel layer's prefix, so the processes that share the websocket layer (daphnes,
    workers, a shell) share the channel too, and another instance on the same Redis does not."""
    prefix = settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("prefix", "goalpost")
    return f"{prefix}:{suffix}"


def client_name(channel: str) -> str:
    """The Redis client name of a process's subscription to `channel` (no spaces, as CLIENT SETNAME wants)."""
    return "sub:" + channel.replace(" ", "_")


class Listener:
    """The subscription to one channel, running while anything holds it.

    `on_message(data)` is awaited for each message, in order. `on_gap()` is awaited after the subscription was lost
    and made again: messages published meanwhile are gone, so the holders must catch up by themselves.
    """

    def __init__(
        self, channel: str, on_message: Callable[[bytes], Awaitable[None]], on_gap: Callable[[], Awaitable[None]]
    ):
        self.channel = channel
        self.on_message = on_message
        self.on_gap = on_gap
        self.holders = 0
        self.subscribed = asyncio.Event()
        self.task: asyncio.Task | None = None

    def hold(self) -> None:
        self.holders += 1
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run(), name=f"pubsub {self.channel}")

    def release(self) -> None:
        self.holders = max(0, self.holders - 1)
        if self.holders == 0 and self.task is not None:
            # Nobody left to hand messages to: unsubscribe now rather than at the next read's timeout.
            self.task.cancel()
            self.task = None
            self.subscribed.clear()

    async def ready(self, timeout: float = READY_TIMEOUT_S) -> bool:
        """True once Redis has confirmed the subscription: a message published from then on reaches this process."""
        try:
            await asyncio.wait_for(self.subscribed.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        import redis.asyncio as aioredis

        lost, backoff = False, 0.1
        while self.holders > 0:
            # Named, so CLIENT LIST shows whose subscription it is (and a test can drop exactly this one).
            client = aioredis.from_url(
                settings.REDIS_URL, socket_connect_timeout=2, client_name=client_name(self.channel)
            )
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                while (confirmed := await pubsub.get_message(timeout=READY_TIMEOUT_S)) is None:
                    pass
                if confirmed.get("type") != "subscribe":
                    raise ConnectionError(f"unexpected answer to SUBSCRIBE: {confirmed!r}")
                self.subscribed.set()
                backoff = 0.1
                if lost:
                    lost = False
                    await self.on_gap()
                while self.holders > 0:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message and message.get("type") == "message":
                        try:
                            await self.on_message(message["data"])
                        except Exception:
                            log.exception("a message on %s could not be handled", self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("lost the subscription to %s; trying again in %.1f s", self.channel, backoff, exc_info=True)
                lost = True
                self.subscribed.clear()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                try:
                    await pubsub.aclose()
                    await client.aclose()
                except Exception:
                    log.debug("closing the subscription to %s failed", self.channel, exc_info=True)
        self.subscribed.clear()


_listeners: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def per_loop(key: str, make: Callable[[], object]):
    """The object `make()` built once for this event loop under `key` (a listener's holders live in one loop)."""
    loop = asyncio.get_running_loop()
    mine = _listeners.setdefault(loop, {})
    if key not in mine:
        mine[key] = make()
    return mine[key]
