from channels.generic.websocket import AsyncWebsocketConsumer

from approvals.broadcast import FragmentEvent, user_group

# Close code for a socket opened without a signed-in session (4000-4999 are the application's own).
UNAUTHENTICATED = 4401


class UserEventsConsumer(AsyncWebsocketConsumer):
    """One socket per signed-in user at /ws/: joins the user's group and relays server-rendered events.

    Catching up after a gap is the page's job (static/js/live.js re-reads its live regions on reconnect), so a
    socket that opens sends nothing and the consumer keeps no state.
    """

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        self.group = user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        # The page only listens; anything a client sends is ignored rather than trusted.
        return

    async def fragment(self, event: FragmentEvent) -> None:
        await self.send(text_data=event["html"])
