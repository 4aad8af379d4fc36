"""The inbox at "/": pending requests as cards, most urgent first, answered with one tap."""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import ApprovalRequest, Decision, RequestStatus
from approvals.views import INBOX_PAGE
from goals.models import GoalStatus
from tests.factories import (
    HTMX,
    IMG,
    PHONE_UA,
    SCRIPT,
    SEVEN_FILES,
    commit_diff,
    finding,
    inbox_count,
    make_goal,
    make_scripted_goal,
    make_step,
    make_user,
    many_files_diff,
    open_request,
    run_record,
    step_once,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def card_request(goal, git_repo):
    """A pending step request whose step has a real diff, two checks and an info finding."""
    diff = commit_diff(git_repo, {"app.py": "print('hi')\nprint('there')\n", "tests/test_app.py": "X = 1\n"})
    findings = [
        finding(reason="Tests changed without product code: tests/test_app.py", gate="tests_without_code"),
        finding(reason="Blast radius within budget", gate="blast_radius", severity="info"),
    ]
    evidence = [run_record(passed=False, summary="pytest 41 passed, 1 failed"), run_record(name="ruff", summary="exit 0")]
    step = make_step(goal, 3, diff, evidence=evidence, findings=findings)
    return open_request(goal, step=step, findings=findings)


def cards_in(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<article id="request-(\d+)"', html)]


# --- who sees what -----------------------------------------------------------------------------------------


def test_the_inbox_needs_a_signed_in_person(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        pytest.param("owner", True, id="the owner sees the request"),
        pytest.param("approver", True, id="an approver sees the request"),
        pytest.param("outsider", False, id="an outsider sees nothing of it"),
    ],
)
def test_the_inbox_per_user(client, card_request, request, who, sees):
    client.force_login(request.getfixturevalue(who))
    response = client.get("/")
    assert response.status_code == 200
    assert (cards_in(response.text) == [card_request.pk]) == sees
    assert (card_request.goal.title in response.text) == sees


def test_home_is_the_inbox_and_the_goal_list_moved_to_goals(client, owner, card_request):
    client.force_login(owner)
    home = client.get("/")
    assert "<h1>Inbox</h1>" in home.text and card_request.goal.title in home.text
    assert home.resolver_match.url_name == "home"
    goals = client.get("/goals/")
    assert goals.status_code == 200 and card_request.goal.title in goals.text


def test_the_htmx_partial_is_the_list_only(client, owner, card_request):
    client.force_login(owner)
    response = client.get("/", **HTMX)
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="inbox-list"')
    assert "<html" not in response.text
    assert cards_in(response.text) == [card_request.pk]


# --- what a card says --------------------------------------------------------------------------------------


def test_a_card_says_what_waits_in_a_glance(client, owner, card_request):
    client.force_login(owner)
    html = client.get("/").text
    card = re.search(rf'<article id="request-{card_request.pk}".*?</article>', html, re.S).group(0)
    assert "Dashboard under 1.5 s" in card
    assert "Medium risk" in card
    assert "Step 3" in card
    assert "Tests changed without product code: tests/test_app.py" in card
    assert "Blast radius within budget" not in card  # info findings stay off the card
    assert re.search(r'2 files <span class="add">\+3</span> <span class="del">−1</span>', card)
    assert "pytest 41 passed, 1 failed" in card and "exit 0" in card
    assert "ago" in card or "now" in card
    assert re.search(r"23\shours, 59\sminutes left", card)
    assert 'name="verdict" value="approve"' in card and 'name="verdict" value="reject"' in card
    assert 'name="comment"' in card
    assert f'hx-post="/approvals/{card_request.pk}/decide"' in card
    assert f'hx-target="#request-{card_request.pk}" hx-swap="outerHTML"' in card


def test_a_request_without_a_step_shows_its_summary(client, owner, goal):
    approval = ApprovalRequest.open(goal, "stall", summary="No progress for 30 minutes")
    client.force_login(owner)
    html = client.get("/").text
    assert cards_in(html) == [approval.pk]
    assert "No progress for 30 minutes" in html


def test_a_high_risk_card_has_no_one_tap_approve(client, owner, goal):
    goal.work_type = "auth_billing"
    goal.save(update_fields=["work_type"])
    approval = open_request(goal)
    client.force_login(owner)
    html = client.get("/").text
    assert "High risk" in html
    assert 'value="approve"' not in html
    assert f'href="/approvals/{approval.pk}/#decision">Review to approve</a>' in html
    assert 'value="reject"' in html


def test_a_budget_card_sends_to_the_page_to_extend(client, owner, goal):
    approval = open_request(goal, kind="budget", details={"budget": "steps", "used": "20", "allowed": "20"})
    client.force_login(owner)
    html = client.get("/").text
    assert f'href="/approvals/{approval.pk}/#decision">Extend…</a>' in html
    assert 'value="approve"' not in html and 'value="reject"' in html


def test_the_most_urgent_requests_come_first(client, owner, git_repo):
    now = timezone.now()
    low_soon = open_request(make_goal(owner, git_repo, title="Docs", work_type="docs", risk="low"))
    medium_later = open_request(make_goal(owner, git_repo, title="Later"))
    medium_soon_new = open_request(make_goal(owner, git_repo, title="Soon, new"))
    medium_soon_old = open_request(make_goal(owner, git_repo, title="Soon, old"))
    high_late = open_request(make_goal(owner, git_repo, title="Billing", work_type="auth_billing"))
    expiries = {
        low_soon: (now + timedelta(minutes=5), now),
        medium_later: (now + timedelta(hours=5), now - timedelta(hours=2)),
        medium_soon_new: (now + timedelta(hours=1), now - timedelta(minutes=1)),
        medium_soon_old: (now + timedelta(hours=1), now - timedelta(hours=1)),
        high_late: (now + timedelta(days=1), now),
    }
    for approval, (expires_at, created_at) in expiries.items():
        ApprovalRequest.objects.filter(pk=approval.pk).update(expires_at=expires_at, created_at=created_at)
    client.force_login(owner)
    order = cards_in(client.get("/").text)
    assert order == [high_late.pk, medium_soon_old.pk, medium_soon_new.pk, medium_later.pk, low_soon.pk]


def test_overdue_and_settled_requests_leave_the_inbox(client, owner, goal, git_repo):
    overdue = open_request(goal)
    ApprovalRequest.objects.filter(pk=overdue.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    settled = open_request(make_goal(owner, git_repo, title="Settled"))
    settled.decide(owner, "approve")
    client.force_login(owner)
    assert cards_in(client.get("/").text) == []


@pytest.mark.parametrize("count", [1, 30])
def test_the_inbox_costs_the_same_queries_for_1_or_30_requests(
    client, owner, approver, git_repo, count, django_assert_max_num_queries
):
    diff = many_files_diff(2, 4)
    for n in range(count):
        goal = make_goal(owner, git_repo, title=f"Goal {n}", approvers=[approver])
        step = make_step(goal, 1, diff)
        approval = open_request(goal, step=step)
        if n % 2:
            Decision.objects.create(request=approval, user=approver, verdict="approve")
    client.force_login(owner)
    with django_assert_max_num_queries(9):
        response = client.get("/")
    assert len(cards_in(response.text)) == min(count, INBOX_PAGE)


def test_the_inbox_shows_a_screen_of_cards_and_the_rest_on_demand(client, owner, git_repo):
    for n in range(INBOX_PAGE + 2):
        open_request(make_goal(owner, git_repo, title=f"Goal {n}"))
    client.force_login(owner)
    first = client.get("/").text
    assert len(cards_in(first)) == INBOX_PAGE
    assert f'href="?offset={INBOX_PAGE}"' in first
    rest = client.get(f"/?offset={INBOX_PAGE}", headers={"HX-Request": "true"}).text
    assert len(cards_in(rest)) == 2
    assert "<html" not in rest and "?offset=" not in rest


# --- the empty inbox ---------------------------------------------------------------------------------------


def test_an_empty_inbox_says_what_is_running(client, owner, git_repo):
    for n in range(3):
        make_goal(owner, git_repo, title=f"Running {n}", status=GoalStatus.RUNNING)
    make_goal(owner, git_repo, title="Paused one", status=GoalStatus.PAUSED)
    client.force_login(owner)
    html = client.get("/").text
    assert "Nothing waits for you." in html
    assert "3 goals running" in html
    assert html.count('href="/goals/') >= 3 and "Running 2</a>" in html
    assert "Paused one" not in html


def test_an_empty_inbox_without_goals_invites_to_write_one(client, outsider):
    client.force_login(outsider)
    html = client.get("/").text
    assert "No goals yet" in html and 'href="/goals/new/">Write a goal</a>' in html


# --- deciding from a card ----------------------------------------------------------------------------------


def test_one_tap_approve_removes_the_card_and_updates_the_count(client, owner, card_request):
    client.force_login(owner)
    response = client.post(
        f"/approvals/{card_request.pk}/decide",
        {"verdict": "approve", "comment": "", "from": "inbox"},
        HTTP_USER_AGENT=PHONE_UA,
        **HTMX,
    )
    assert response.status_code == 200
    assert cards_in(response.text) == []  # the card's outerHTML becomes nothing
    assert inbox_count(response.text) == "0"
    assert '<div id="inbox-empty" hx-swap-oob="true">' in response.text and "Nothing waits for you." in response.text
    assert "Approved: Dashboard under 1.5 s." in response.text
    event = json.loads(response["HX-Trigger"])["approvalDecided"]
    assert event == {"id": card_request.pk, "verdict": "approve", "status": "approved", "settled": True}
    decision = Decision.objects.get(request=card_request)
    assert decision.device == "Chrome on Android"


def test_the_count_drops_by_one_while_other_requests_wait(client, owner, card_request, git_repo):
    other = open_request(make_goal(owner, git_repo, title="Another"))
    client.force_login(owner)
    response = client.post(
        f"/approvals/{card_request.pk}/decide", {"verdict": "reject", "comment": "no", "from": "inbox"}, **HTMX
    )
    assert inbox_count(response.text) == "1"
    assert 'id="inbox-empty"' not in response.text
    assert ApprovalRequest.objects.get(pk=other.pk).is_pending
    assert Decision.objects.get(request=card_request).comment == "no"


def test_a_card_decision_without_javascript_redirects_to_the_inbox(client, owner, card_request):
    client.force_login(owner)
    response = client.post(
        f"/approvals/{card_request.pk}/decide", {"verdict": "reject", "from": "inbox"}, follow=True
    )
    assert response.redirect_chain == [("/", 302)]
    assert "Rejected: Dashboard under 1.5 s." in response.text
    assert cards_in(response.text) == []
    card_request.refresh_from_db()
    assert card_request.status == RequestStatus.REJECTED


def test_a_refusal_takes_the_cards_place_with_htmx(client, owner, approver, card_request):
    card_request.decide(approver, "reject")
    client.force_login(owner)
    response = client.post(f"/approvals/{card_request.pk}/decide", {"verdict": "approve", "from": "inbox"}, **HTMX)
    assert response.status_code == 200
    card = re.search(rf'<article id="request-{card_request.pk}" class="request-card refused" role="alert">.*?</article>',
                     response.text, re.S).group(0)  # fmt: skip
    assert re.search(r"Already decided: approver chose “reject” at \d\d:\d\d:\d\d\.", card)
    assert json.loads(response["HX-Trigger"])["approvalRefused"]["code"] == "already_decided"
    assert inbox_count(response.text) == "0"


def test_a_refusal_without_javascript_is_a_message_on_the_inbox(client, owner, approver, card_request):
    card_request.decide(approver, "reject")
    client.force_login(owner)
    response = client.post(
        f"/approvals/{card_request.pk}/decide", {"verdict": "approve", "from": "inbox"}, follow=True
    )
    assert response.redirect_chain == [("/", 302)]
    assert "Already decided: approver chose “reject”" in response.text


def test_an_expired_card_says_so(client, owner, card_request):
    ApprovalRequest.objects.filter(pk=card_request.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    client.force_login(owner)
    response = client.post(f"/approvals/{card_request.pk}/decide", {"verdict": "approve", "from": "inbox"}, **HTMX)
    assert "This request expired unanswered" in response.text


def test_a_crafted_high_risk_approve_from_the_inbox_goes_to_the_page(client, owner, goal):
    goal.work_type = "auth_billing"
    goal.save(update_fields=["work_type"])
    approval = open_request(goal)
    client.force_login(owner)
    response = client.post(f"/approvals/{approval.pk}/decide", {"verdict": "approve", "from": "inbox"}, **HTMX)
    assert response["HX-Redirect"] == f"/approvals/{approval.pk}/#decision"
    approval.refresh_from_db()
    assert approval.is_pending


def test_the_first_of_two_approvals_keeps_the_card_waiting(client, goal, owner, approver):
    second = make_user("second")
    goal.approvers.add(second)
    goal.work_type = "migration"
    goal.save(update_fields=["work_type"])
    approval = open_request(goal)
    client.force_login(owner)
    response = client.post(
        f"/approvals/{approval.pk}/decide", {"verdict": "approve", "confirm": "1", "from": "inbox"}, **HTMX
    )
    assert cards_in(response.text) == [approval.pk]
    assert "You approved — waiting for a second approver." in response.text
    assert "1 of 2 approvals (owner)" in response.text
    assert json.loads(response["HX-Trigger"])["approvalDecided"]["settled"] is False
    client.force_login(approver)
    html = client.get("/").text
    assert "1 of 2 approvals (owner)" in html and 'value="reject"' in html


# --- escaping ----------------------------------------------------------------------------------------------


def test_titles_reasons_and_summaries_are_escaped_on_cards(client, owner, goal):
    goal.title = f"Goal {SCRIPT}"
    goal.save(update_fields=["title"])
    step = make_step(goal, 1, evidence=[run_record(summary=f"pytest {IMG}")])
    open_request(goal, step=step, findings=[finding(reason=f"Reason {SCRIPT} {IMG}")])
    client.force_login(owner)
    html = client.get("/").text
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "Goal &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "pytest &quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in html


def test_a_request_from_the_loop_makes_a_card(client, owner, shop_repo, worktrees_in_tmp):
    goal = make_scripted_goal(owner, shop_repo, [SEVEN_FILES])
    approval = step_once(goal).request
    client.force_login(owner)
    html = client.get("/").text
    assert cards_in(html) == [approval.pk]
    assert "Plan" in html and "7 files" in html
    assert "pytest 1 passed" in html
