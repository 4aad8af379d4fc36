import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Django must be set up before anything imports models (the consumers do).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.core.signals import request_started  # noqa: E402
from django.db import close_old_connections, reset_queries  # noqa: E402

from approvals.routing import websocket_urlpatterns  # noqa: E402

# Django's handler runs a request's sync code (sync views, sync middleware) in a thread of its own, new for each
# request (its ThreadSensitiveContext), so at the start of a request that thread holds no connection and
# request_started's two database receivers have nothing to do. Called through sync_to_async, they would only
# create that thread first thing, to sit idle for as long as a long-poll waits: 1,000 waiting agents, 1,000
# threads (config/middleware.py keeps the middleware off it too). request_finished still closes the request's
# connections, in the thread that opened them.
request_started.disconnect(close_old_connections)
request_started.disconnect(reset_queries)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
