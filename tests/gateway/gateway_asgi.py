"""The project's ASGI application with the gateway's waiting views served outside Django's per-request thread,
as config/asgi.py wraps it (`waiting_endpoints(...)`); for the test that counts threads."""

from config import asgi as project  # sets Django up before anything imports models


def _wrapped():
    from gateway.api import WaitingEndpoints, waiting_endpoints

    if isinstance(project.application, WaitingEndpoints):
        return project.application
    return waiting_endpoints(project.application)


application = _wrapped()
