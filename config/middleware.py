"""Django's middleware, with its hooks kept off the request's thread under ASGI, so a request that waits holds none.

Django's ASGI handler calls a MiddlewareMixin's process_request, process_view and process_response through
sync_to_async(thread_sensitive=True) (django/utils/deprecation.py, core/handlers/base.py), and the handler's
ThreadSensitiveContext gives each request an executor thread of its own from that first call until the request
ends (core/handlers/asgi.py). An agent long-polling its decision for 25 s, or a Claude Code hook waiting for the
phone, would hold that thread idle for the whole wait: 1,000 waiting agents, 1,000 threads. The classes below are
Django's own middleware (subclasses, so the checks that look for them find them), changed in two ways only:

- OnTheLoop: middleware whose hooks only compute (security headers and the HTTPS redirect, the Host check and
  slashes, CSP) has them called inline on the event loop in an async stack (a sync one, the test client's, runs
  them as Django does).
- NotForAgents: the session, CSRF, user, login-required and messages middleware skip a request to the JSON API
  that carries `Authorization: Bearer`: the agent's token is its only credential there (the API's auth checks
  it) and a session cookie sent along must not act for it. Any other request gets them as Django runs them.

Neither adds a frame to a sync stack, where the test client and the bench run: OnTheLoop hands it Django's class
itself and NotForAgents runs Django's __call__ inline. Frames matter on CPython 3.11, whose frame stack grows in
chunks that are allocated and freed as a deep call crosses their edge: the same 20,000-line approval page renders
in 60 ms or 138 ms by how deep it starts (docs/bench.md), and eight middleware frames more took the bench's figure
from 60 to 78 ms with not one call more.

The signal receivers config/asgi.py leaves out, and the deploy checks of config/checks.py, belong to the same story.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction, sync_to_async
from csp import middleware as csp
from django.contrib.auth import middleware as auth
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.middleware import common, csrf, security

API_PREFIX = "/api/v1/"


def is_agent_request(request) -> bool:
    """A JSON API request with a bearer token: the token is its credential, never a session."""
    scheme = request.headers.get("Authorization", "").strip().partition(" ")[0]
    return scheme.lower() == "bearer" and request.path_info.startswith(API_PREFIX)


def django_class(cls: type, mixin: type) -> type:
    """The Django class that `cls` changes: the one after `mixin` in its MRO."""
    mro = cls.__mro__
    return mro[mro.index(mixin) + 1]


class OnTheLoop:
    """Calls the middleware's hooks inline when the stack is async: they only compute, the loop need not wait.

    A sync stack (the test client, a WSGI server) gets Django's class itself: it needs nothing changed, and every
    frame a middleware adds sits under every page's rendering (the module's note above)."""

    def __new__(cls, get_response):
        if iscoroutinefunction(get_response):
            return super().__new__(cls)
        return django_class(cls, OnTheLoop)(get_response)

    def __init__(self, get_response):
        super().__init__(get_response)
        if hasattr(self, "process_view"):
            self.process_view = self._process_view_on_the_loop

    async def __call__(self, request):
        response = self.process_request(request) if hasattr(self, "process_request") else None
        response = response or await self.get_response(request)
        return self.process_response(request, response) if hasattr(self, "process_response") else response

    async def _process_view_on_the_loop(self, request, view, args, kwargs):
        return type(self).process_view(self, request, view, args, kwargs)


class NotForAgents:
    """Skips the middleware for agent requests; any other request gets it as Django runs it."""

    def __init__(self, get_response):
        super().__init__(get_response)
        if hasattr(self, "process_view"):
            on_the_loop = iscoroutinefunction(get_response)
            self.process_view = self._process_view_async if on_the_loop else self._process_view_sync

    def __call__(self, request):
        if is_agent_request(request):
            self.skipped(request)
            return self.get_response(request)
        if self.async_mode:
            return self.__acall__(request)
        # Django's MiddlewareMixin.__call__, inline rather than through super(): no frame more (the note above).
        response = self.process_request(request) if hasattr(self, "process_request") else None
        response = response or self.get_response(request)
        return self.process_response(request, response) if hasattr(self, "process_response") else response

    def skipped(self, request) -> None:
        """What an agent request gets instead of the middleware: nothing, unless a subclass says otherwise."""

    def _process_view_sync(self, request, view, args, kwargs):
        return None if is_agent_request(request) else type(self).process_view(self, request, view, args, kwargs)

    async def _process_view_async(self, request, view, args, kwargs):
        if is_agent_request(request):
            return None
        hook = type(self).process_view
        return await sync_to_async(hook, thread_sensitive=True)(self, request, view, args, kwargs)


class SecurityMiddleware(OnTheLoop, security.SecurityMiddleware):
    pass


class CommonMiddleware(OnTheLoop, common.CommonMiddleware):
    """Also validates the Host header (ALLOWED_HOSTS) for every request, waiting ones included."""


class CSPMiddleware(OnTheLoop, csp.CSPMiddleware):
    pass


class SessionMiddleware(NotForAgents, sessions.SessionMiddleware):
    pass


class CsrfViewMiddleware(NotForAgents, csrf.CsrfViewMiddleware):
    pass


class AuthenticationMiddleware(NotForAgents, auth.AuthenticationMiddleware):
    def skipped(self, request) -> None:
        request.user = AnonymousUser()  # an agent request is nobody's: its token is what the API checks


class LoginRequiredMiddleware(NotForAgents, auth.LoginRequiredMiddleware):
    pass


class MessageMiddleware(NotForAgents, messages.MessageMiddleware):
    pass


class StaticFilesMiddleware:
    """servestatic's middleware, which is async only. Under an async stack (daphne) it runs as it comes. Under a
    sync one (Django's test client, a WSGI server) Django would wrap it in async_to_sync, an event loop for every
    request: every page paid for it (the bench's inbox and diff pages went from 21 and 58 ms to 25 and 76). Here a
    sync request goes through it only when it asks for a static file; any other passes straight on."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        from django.conf import settings
        from servestatic.middleware import ServeStaticMiddleware

        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
            self.serve = ServeStaticMiddleware(get_response)
        else:
            self.serve = ServeStaticMiddleware(sync_to_async(get_response))
            self.serve_sync = async_to_sync(self.serve)
        self.static_url = settings.STATIC_URL or "/static/"
        if not self.static_url.startswith("/"):
            self.static_url = "/" + self.static_url

    def __call__(self, request):
        if self.is_async:
            return self.serve(request)
        path = request.path_info
        if self.serve.autorefresh or path in self.serve.files or path.startswith(self.static_url):
            return self.serve_sync(request)
        return self.get_response(request)
