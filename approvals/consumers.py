from __future__ import annotations

import asyncio
import json
import logging

from channels.generic.websocket import AsyncWebsocketConsumer

from approvals.broadcast import FragmentEvent, live_channel, user_group
from config.pubsub import Listener, per_loop

log = logging.getLogger(__name__)

# Close code for a socket opened without a signed-in session (4000-4999 are the application's own).
UNAUTHENTICATED = 4401
# "Service restart": the htmx websocket extension reopens the socket, and live.js then re-reads the live regions.
CATCH_UP = 1012
# daphne's transport writes when the event loop gets control back: yielding every few sockets lets the first ones
# go out (and their clients start reading) while the rest are framed, instead of all 200 after the last.
SEND_BATCH = 20


class LiveSockets:
    """This process's open sockets by person, fed by one subscription to the live channel.

    A broadcast arrives here once per process, and each person's event goes straight to their sockets: the
    fragment was rendered once by the sender, and no socket has a channel of its own in Redis.
    """

    def __init__(self):
        self.by_user: dict[int, set[UserEventsConsumer]] = {}
        self.listener = Listener(live_channel(), self.deliver, self.catch_up_all)

    async def join(self, user_id: int, socket: UserEventsConsumer) -> bool:
        """Hold the socket for its person; True once the subscription is live, so nothing sent later is missed."""
        self.by_user.setdefault(user_id, set()).add(socket)
        self.listener.hold()
        if await self.listener.ready():
            return True
        self.leave(user_id, socket)
        return False

    def leave(self, user_id: int, socket: UserEventsConsumer) -> None:
        sockets = self.by_user.get(user_id)
        if sockets is None or socket not in sockets:
            return
        sockets.discard(socket)
        if not sockets:
            del self.by_user[user_id]
        self.listener.release()

    def count(self) -> int:
        return sum(len(sockets) for sockets in self.by_user.values())

    async def deliver(self, data: bytes) -> None:
        sent = 0
        for user_id, event in json.loads(data):
            for socket in list(self.by_user.get(user_id, ())):
                try:
                    await socket.fragment(event)
                except Exception:  # a socket closing under us: its disconnect takes it out
                    log.debug("could not send to a socket of user %s", user_id, exc_info=True)
                sent += 1
                if sent % SEND_BATCH == 0:
                    await asyncio.sleep(0)

    async def catch_up_all(self) -> None:
        """The subscription was lost for a while: every page may have missed something, so each reconnects."""
        for sockets in list(self.by_user.values()):
            for socket in list(sockets):
                await socket.close(code=CATCH_UP)


def live_sockets() -> LiveSockets:
    return per_loop("approvals.live_sockets", LiveSockets)


class UserEventsConsumer(AsyncWebsocketConsumer):
    """One socket per signed-in user at /ws/: held by this process's `LiveSockets` for the user, relays the
    server-rendered events broadcast to them.

    Catching up after a gap is the page's job (static/js/live.js re-reads its live regions on reconnect), so a
    socket that opens sends nothing and the consumer keeps no state. It also joins the user's channel-layer group,
    so a bare `group_send` still reaches it (the bench measures that path as the floor).
    """

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        self.user_id = user.pk
        self.group = user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        if not await live_sockets().join(self.user_id, self):
            await self.close()  # Redis unreachable: the extension tries again later
            return
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "user_id"):
            live_sockets().leave(self.user_id, self)
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        # The page only listens; anything a client sends is ignored rather than trusted.
        return

    async def fragment(self, event: FragmentEvent) -> None:
        if event.get("type") == "fragment" and isinstance(event.get("html"), str):
            await self.send(text_data=event["html"])
