"""A hundred people tap one request at the same moment, and forty pages load at once, through a real daphne: every
tap gets an answer (no 500 "too many clients"), one decision wins, and the server holds no more connections than its
pool allows (on PostgreSQL, counted by PostgreSQL itself).

Its own xdist group: the test processes of a parallel run share PostgreSQL's 100 connections, and this test is the
one that takes many of them at once."""

import secrets
import threading
import uuid
from collections.abc import Callable

import psycopg
import pytest
import requests
from django.db import connection

from approvals.models import ApprovalRequest, Decision, RequestStatus
from tests.factories import make_user, subprocess_database_url
from tests.support.processes import running_daphne
from tests.support.stack import session_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("postgres-connections")]
TAPS = 100
PAGES = 40


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, collected_static):
    """(base URL, the application_name its PostgreSQL sessions carry) of a daphne on the test database."""
    with django_db_blocker.unblock():
        database_url = subprocess_database_url()
    name = f"goalpost-pool-test-{uuid.uuid4().hex[:8]}"
    with running_daphne(database_url, PGAPPNAME=name, STATIC_ROOT=str(collected_static)) as (url, _):
        yield url, name


def pool_max() -> int:
    """The most connections a process's pool opens, as the settings say from the environment daphne reads too (this
    test process itself runs without a pool: tests/conftest.py)."""
    from config.settings import database_from_env

    return database_from_env()["OPTIONS"]["pool"]["max_size"]


class PeakSessions:
    """The most PostgreSQL sessions named `name` seen at once, sampled from a thread with a connection of its own."""

    def __init__(self, name: str):
        self.name = name
        self.peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        settings = connection.settings_dict
        with psycopg.connect(
            dbname=settings["NAME"],
            user=settings.get("USER") or "postgres",
            password=settings.get("PASSWORD") or None,
            host=settings.get("HOST") or "127.0.0.1",
            port=settings.get("PORT") or 5432,
            autocommit=True,
        ) as monitor:
            while not self.stop.wait(0.01):
                (count,) = monitor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [self.name]
                ).fetchone()
                self.peak = max(self.peak, count)

    def __enter__(self) -> "PeakSessions":
        if connection.vendor == "postgresql":
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=10)


def browsers(url: str, users: list, count: int) -> list[requests.Session]:
    """`count` signed-in browsers, the users' sessions taken in turn, each with its CSRF cookie."""
    cookies = [session_for(user) for user in users]
    sessions = []
    for index in range(count):
        browser = requests.Session()
        token = secrets.token_hex(16)  # a CSRF secret as Django's cookie holds one: 32 characters
        browser.cookies.update({**cookies[index % len(cookies)], "csrftoken": token})
        browser.headers.update({"X-CSRFToken": token, "Referer": url + "/"})
        sessions.append(browser)
    return sessions


def all_at_once(calls: list[Callable[[], requests.Response]]) -> list[requests.Response | BaseException]:
    """Run the calls on a thread each, released together; their responses (or what they raised), in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=60)
            results[index] = calls[index]()
        except BaseException as error:  # reported by the test, not lost in a thread
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    return results


def test_a_hundred_people_deciding_at_once_all_get_an_answer_and_one_decision_wins(server, goal, owner, approver):
    url, name = server
    people = [owner, approver, *(make_user(f"approver{i}") for i in range(3))]
    goal.approvers.add(*people[2:])
    request = ApprovalRequest.open(goal, "step", summary="everyone taps at once")
    taps = browsers(url, people, TAPS)

    def tap(index: int) -> Callable[[], requests.Response]:
        verdict = "approve" if index % 2 else "reject"
        return lambda: taps[index].post(
            f"{url}/approvals/{request.pk}/decide",
            data={"verdict": verdict, "from": "inbox", "device": f"phone-{index}"},
            headers={"HX-Request": "true"},
            timeout=120,
        )

    with PeakSessions(name) as sessions:
        answers = all_at_once([tap(i) for i in range(TAPS)])

    failed = [answer for answer in answers if not isinstance(answer, requests.Response)]
    assert failed == []
    statuses = sorted({answer.status_code for answer in answers})
    assert statuses == [200], [(a.status_code, a.text[:300]) for a in answers if a.status_code != 200][:3]
    decision = Decision.objects.get(request=request)
    request.refresh_from_db()
    assert request.status == (RequestStatus.APPROVED if decision.verdict == "approve" else RequestStatus.REJECTED)
    refused = [answer.text for answer in answers if "Already decided:" in answer.text]
    assert len(refused) == TAPS - 1
    assert all(decision.user.username in html for html in refused), "each refusal says who decided"
    if connection.vendor == "postgresql":
        assert 1 <= sessions.peak <= pool_max()


def test_forty_pages_loading_at_once_share_the_pool_instead_of_a_connection_each(server, owner, pending):
    url, name = server
    pages = browsers(url, [owner], PAGES)
    with PeakSessions(name) as sessions:
        answers = all_at_once([lambda page=page: page.get(url + "/", timeout=120) for page in pages])

    assert [getattr(answer, "status_code", answer) for answer in answers] == [200] * PAGES
    assert all("everyone taps" not in a.text and f"/approvals/{pending.pk}/" in a.text for a in answers)
    if connection.vendor == "postgresql":
        assert 1 <= sessions.peak <= pool_max() < PAGES, f"{sessions.peak} connections for {PAGES} pages"
