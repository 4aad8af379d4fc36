from typing import TypedDict

from channels.generic.websocket import AsyncWebsocketConsumer

# Close code for a socket opened without a signed-in session (4000-4999 are the application's own).
UNAUTHENTICATED = 4401


class FragmentEvent(TypedDict):
    """Server-rendered HTML for the htmx websocket extension: elements swap in by id (out of band)."""

    type: str  # "fragment"
    html: str


def user_group(user_id: int) -> str:
    """The channel group that carries one user's events to every device they have open."""
    return f"user-{user_id}"


class UserEventsConsumer(AsyncWebsocketConsumer):
    """One socket per signed-in user at /ws/: joins the user's group and relays server-rendered events."""

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
