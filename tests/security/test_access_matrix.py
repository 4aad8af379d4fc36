"""Who may do what, for every route: generated from the URL conf and the websocket routes.

ACCESS, in tests/support/access.py, names each route's expected answer for the six kinds of caller. A route missing
from it fails `test_every_route_has_an_access_rule`, so a new view cannot ship before someone decides who may use it.
The admin is Django's own: every admin route is refused to all six (none of them is staff).
"""

import json
import re

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import reverse

from gateway.models import AgentToken
from tests.factories import ROLES, World, client_for, make_goal, make_user
from tests.support.access import (
    ACCESS,
    HEALTH,
    HOOK_REFUSED,
    LOGIN,
    OPEN,
    REDIRECT,
    WEBSOCKET_ACCESS,
    Call,
    http_routes,
    is_admin,
    websocket_routes,
)


def test_every_route_has_an_access_rule():
    routes = [(key, pattern) for key, pattern, _ in http_routes() if not is_admin(key, pattern)]
    missing = [f"{key} ({pattern})" for key, pattern in routes if key not in ACCESS]
    assert not missing, f"Decide who may use these routes, in ACCESS: {missing}"
    assert not set(ACCESS) - {key for key, _ in routes}, "ACCESS names routes that no longer exist"
    assert websocket_routes() and sorted(websocket_routes()) == sorted(WEBSOCKET_ACCESS)


def check(response, expected, url: str) -> None:
    location = response.headers.get("Location", "")
    if expected == LOGIN:
        assert (response.status_code, location.partition("?")[0]) == (302, reverse("login")), url
        assert "next=" in location
    elif expected == HOOK_REFUSED:
        assert response.status_code == 200 and set(response.json()) == {"systemMessage"}, (url, response.content)
    elif expected == HEALTH:
        # Whether a worker is up in this test run is no access question: both answers carry the parts' states.
        assert response.status_code in (200, 503) and "status" in response.json(), (url, response.content[:300])
    elif expected == REDIRECT:
        assert response.status_code == 302 and not location.startswith(f"{reverse('login')}?next="), (
            url,
            response.status_code,
            location,
        )
    else:
        assert response.status_code == expected, (url, response.content[:300])


# The waiting endpoints authenticate in a worker thread, on their own connection: they need committed rows.
COMMITTED = {"api_request_decision", "api_claude_hook"}
CASES = [
    pytest.param(key, method, role, id=f"{key} {method} {role}", marks=[pytest.mark.django_db(transaction=True)])
    if key in COMMITTED
    else pytest.param(key, method, role, id=f"{key} {method} {role}")
    for key, calls in ACCESS.items()
    for method in calls
    for role in ROLES
]


def send(client: Client, method: str, url: str, call: Call, world: World):
    if call.json is not None:
        return client.generic(method, url, data=json.dumps(call.body(world)), content_type="application/json")
    data = call.data(world) if call.data else {}
    if method == "GET":
        return client.get(url, data)
    if method == "POST":
        return client.post(url, data)
    return client.generic(method, url)


@pytest.mark.parametrize(("key", "method", "role"), CASES)
def test_access(world, key, method, role):
    call = ACCESS[key][method]
    url = reverse(key, kwargs=call.kwargs(world)) + call.query
    response = send(client_for(world, role), method, url, call, world)
    check(response, call.expect[role], url)
    if call.after:
        call.after(world, role)


ADMIN_SAMPLES = {"object_id": "1", "content_type_id": "1", "app_label": "goals", "url": "nothing-here/", "id": "1"}


def sample_path(pattern: str) -> str:
    """A concrete path for a route or regex pattern, with sample values for its parameters."""
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: ADMIN_SAMPLES[m[1]], pattern)
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: ADMIN_SAMPLES[m[1]], path)
    return "/" + path.replace("^", "").replace("$", "")


ADMIN_PATHS = sorted({sample_path(pattern) for key, pattern, _ in http_routes() if is_admin(key, pattern)})


def test_the_admin_lets_none_of_the_six_in(world):
    """Every admin route sends the six to a sign-in page (the site's, or the admin's once signed in): none is staff."""
    admin_login = reverse("admin:login")
    site_login = f"{reverse('login')}?next="
    assert len(ADMIN_PATHS) > 20
    for role in ROLES:
        client = client_for(world, role)
        for path in ADMIN_PATHS:
            response = client.get(path)
            if path == admin_login:
                assert response.status_code == 200
                continue
            assert response.status_code == 302, (role, path, response.status_code)
            # The admin's logout sends a non-staff person back to the admin index, which asks them to sign in.
            refused_to = (admin_login, site_login, reverse("admin:index")) if path == reverse("admin:logout") else (
                admin_login,
                site_login,
            )
            assert response.headers["Location"].startswith(refused_to), (role, path)


def test_staff_get_into_the_admin(world):
    staff = make_user("staff", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    assert client.get(reverse("admin:goals_goal_changelist")).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_websocket_routes(world):
    for pattern, expected in WEBSOCKET_ACCESS.items():
        for role in ROLES:
            client = client_for(world, role)
            headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
            if "sessionid" in client.cookies:
                headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
            if role == "agent":
                headers.append((b"authorization", f"Bearer {world.secret}".encode()))
            assert async_to_sync(connects)(f"/{pattern}", headers) == (expected[role] == OPEN), (pattern, role)


async def connects(path: str, headers: list) -> bool:
    from config.asgi import application

    socket = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await socket.connect()
    await socket.disconnect()
    return connected



# --- another goal's objects answer as unknown ones: no hint that they exist ---------------------------------------

UNKNOWN_ID = 987654321
# Routes that name an object by id, and who has no part in it: a signed-in outsider, and another goal's agent.
OBJECT_ROUTES = sorted({key for key, pattern, _ in http_routes() if "<int:" in pattern and key in ACCESS})
STRANGER_CASES = [
    pytest.param(
        key, method, id=f"{key} {method}", marks=[pytest.mark.django_db(transaction=True)] if key in COMMITTED else []
    )
    for key in OBJECT_ROUTES
    for method in ACCESS[key]
]


def stranger_client(world: World, stranger: str) -> Client:
    if stranger == "outsider":
        return client_for(world, "outsider")
    other = make_goal(world.users["outsider"], world.goal.repository.source, title="Another goal")
    client = Client(enforce_csrf_checks=True)
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {AgentToken.issue(other, world.users['outsider'])[1]}"
    return client


def answer(response) -> tuple:
    """What a caller can tell from an answer: its status, where it leads, and its text with the numbers blanked."""
    text = re.sub(r"\d+", "N", response.content.decode(errors="replace"))
    return response.status_code, re.sub(r"\d+", "N", response.headers.get("Location", "")), text


@pytest.mark.parametrize(("key", "method"), STRANGER_CASES)
def test_another_goals_object_answers_as_an_unknown_one(world, key, method):
    call = ACCESS[key][method]
    kwargs = call.kwargs(world)
    unknown = {name: UNKNOWN_ID if isinstance(value, int) else value for name, value in kwargs.items()}
    for stranger in ("outsider", "another goal's agent"):
        client = stranger_client(world, stranger)
        theirs = send(client, method, reverse(key, kwargs=kwargs) + call.query, call, world)
        missing = send(client, method, reverse(key, kwargs=unknown) + call.query, call, world)
        assert answer(theirs) == answer(missing), stranger
        # Refused, or sent to sign in: a 403 says what the caller is (a token, no CSRF token), never the object.
        assert theirs.status_code in (302, 401, 403, 404), (stranger, theirs.status_code, theirs.content[:300])
