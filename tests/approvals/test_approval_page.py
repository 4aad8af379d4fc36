"""The approval page at /approvals/<id>/, its lazily loaded files and the decision endpoint."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import ApprovalRequest, Decision, RequestStatus
from approvals.views import describe_device
from goals.models import GoalEvent, GoalStatus, Step
from tests.factories import (
    HTMX,
    IMG,
    PHONE_UA,
    SCRIPT,
    WEAKEN,
    commit_diff,
    finding,
    inbox_count,
    make_scripted_goal,
    make_step,
    make_user,
    many_files_diff,
    open_request,
    run_git,
    run_record,
    step_once,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("worktrees_in_tmp")]


@pytest.fixture
def approval(goal, git_repo):
    """A pending step request with a real two-file git diff and one failing check."""
    diff = commit_diff(
        git_repo,
        {"app.py": "print('hello, world')\n", "tests/test_app.py": "def test_app():\n    assert True\n"},
    )
    step = make_step(
        goal,
        1,
        diff,
        evidence=[run_record(passed=False, summary="pytest 41 passed, 1 failed", output="E   assert 1 == 2\n1 failed")],
        findings=[finding(path="tests/test_app.py", lines=["+    assert True"])],
    )
    return open_request(goal, step=step, findings=step.findings)


def is_decision_area(response, approval, decided: bool = False) -> bool:
    """The response is the page's decision area alone; decided here, it leaves the id live updates replace."""
    area_id = f"decision-area-{approval.pk}{'-decided' if decided else ''}"
    return (
        response.text.lstrip().startswith(f'<section id="{area_id}" class="card decision"')
        and "<html" not in response.text
    )


def page(client, approval) -> str:
    response = client.get(f"/approvals/{approval.pk}/")
    assert response.status_code == 200
    return response.text


# --- who may see it ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [
        pytest.param("owner", 200, id="the owner sees the request"),
        pytest.param("approver", 200, id="an approver sees the request"),
        pytest.param("outsider", 404, id="an outsider gets 404, never a hint"),
    ],
)
def test_the_approval_page_per_user(client, approval, request, who, status):
    client.force_login(request.getfixturevalue(who))
    response = client.get(f"/approvals/{approval.pk}/")
    assert response.status_code == status
    assert (approval.goal.title in response.text) == (status == 200)
    file_response = client.get(f"/approvals/{approval.pk}/files/0/")
    assert file_response.status_code == status


def test_signed_out_people_are_sent_to_sign_in(client, approval):
    for response in (client.get(f"/approvals/{approval.pk}/"), client.post(f"/approvals/{approval.pk}/decide")):
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_an_outsider_cannot_decide(client, approval, outsider):
    client.force_login(outsider)
    response = client.post(f"/approvals/{approval.pk}/decide", {"verdict": "approve"})
    assert response.status_code == 404
    approval.refresh_from_db()
    assert approval.status == RequestStatus.PENDING


# --- what it shows -----------------------------------------------------------------------------------------


def test_the_header_says_what_waits_and_until_when(as_owner, approval):
    html = page(as_owner, approval)
    assert f'href="/goals/{approval.goal_id}/"' in html
    assert '<h1 class="ask">Approve step 1: 2 files in 2 folders — 1 check failing, tests weakened</h1>' in html
    assert 'class="status status-request-pending"' in html
    assert "Medium risk" in html
    assert "left" in html and "opened" in html
    assert "Tests weakened in tests/test_shop.py: assertion removed" in html


def test_the_page_shows_evidence_with_its_output_behind_a_tap(as_owner, approval):
    html = page(as_owner, approval)
    assert "✗ Failed" in html
    assert "pytest 41 passed, 1 failed" in html
    assert "3.2 s" in html
    assert re.search(r'<details class="output"><summary>Output</summary><pre>E   assert 1 == 2', html)
    assert "tests/test_shop.py::test_total" in html


def test_the_page_shows_the_contract_budgets_and_recent_history(as_owner, approval, goal):
    for n in range(12):
        GoalEvent.objects.create(goal=goal, kind="note", message=f"history line {n}")
    html = page(as_owner, approval)
    assert "Reduce the dashboard initial load time below 1.5s" in html
    assert "Do not remove any current filters" in html
    assert "Load time under 1.5 s three runs in a row" in html
    assert re.search(r"Steps</span>\s*<span class=\"meter-figure\">1 / 20</span>", html)
    assert "history line 11" in html and "history line 2" in html
    assert "history line 1<" not in html  # only the last ten events


def test_a_plan_request_shows_the_plan_first(as_owner, goal):
    approval = open_request(goal, kind="plan", plan="1. Split invoices\n2. Move the CSV writer")
    html = page(as_owner, approval)
    assert "The agent’s plan" in html
    assert "1. Split invoices<br>2. Move the CSV writer" in html
    assert html.index("The agent’s plan") < html.index("Why a person is asked")


def test_the_page_partial_for_htmx_is_the_decision_area(as_owner, approval):
    response = as_owner.get(f"/approvals/{approval.pk}/", **HTMX)
    assert response.status_code == 200
    assert is_decision_area(response, approval)
    assert 'name="verdict" value="approve"' in response.text


# --- the diff viewer on the page ---------------------------------------------------------------------------


def test_the_first_three_files_are_rendered_and_the_rest_load_on_demand(as_owner, goal):
    step = make_step(goal, 1, many_files_diff(6, 4))
    approval = open_request(goal, step=step, findings=[])
    html = page(as_owner, approval)
    for index in range(3):
        assert f'<details class="file" id="file-{index}" open>' in html
    for index in range(3, 6):
        assert f'hx-get="/approvals/{approval.pk}/files/{index}/" hx-trigger="toggle once"' in html
        assert f'<a href="/approvals/{approval.pk}/files/{index}/">Show this file</a>' in html
    assert "new_value_0" in html
    assert html.count('<table class="hunk">') == 3


def test_a_lazy_file_comes_as_a_partial_for_htmx_and_as_a_page_without(as_owner, goal):
    step = make_step(goal, 1, many_files_diff(6, 4))
    approval = open_request(goal, step=step, findings=[])
    partial = as_owner.get(f"/approvals/{approval.pk}/files/4/", **HTMX)
    assert partial.status_code == 200
    assert "<html" not in partial.text
    assert '<table class="hunk">' in partial.text
    assert '<td class="lno">1</td>' in partial.text
    full = as_owner.get(f"/approvals/{approval.pk}/files/4/")
    assert full.status_code == 200
    assert "<html" in full.text and "pkg/module_4.py" in full.text
    assert f'href="/approvals/{approval.pk}/#file-4"' in full.text
    assert as_owner.get(f"/approvals/{approval.pk}/files/6/").status_code == 404


def test_a_huge_diff_is_a_small_page(as_owner, goal):
    step = make_step(goal, 1, many_files_diff(500, 40))
    assert step.diff.count("\n") > 20_000
    approval = open_request(goal, step=step, findings=[])
    html = page(as_owner, approval)
    assert len(html.encode()) < 300_000
    assert html.count('<details class="file"') == 300  # a page of files; the rest in batches
    assert f'hx-get="/approvals/{approval.pk}/files/?start=300"' in html
    assert html.count('<table class="hunk">') == 3


def test_a_step_recorded_without_file_sizes_shows_the_same_files(as_owner, goal):
    step = make_step(goal, 1, many_files_diff(6, 4))
    quoted = finding(path="pkg/module_4.py", lines=["+new_value_1 = compute(1, 'y')"])
    approval = open_request(goal, step=step, findings=[quoted])
    sections = re.compile(r'<details class="file".*?</details>', re.S)
    indexed = sections.findall(page(as_owner, approval))
    older = [{key: value for key, value in entry.items() if key not in ("lines", "chars")} for entry in step.files]
    Step.objects.filter(pk=step.pk).update(files=older)
    assert sections.findall(page(as_owner, approval)) == indexed
    assert len(indexed) == 6 and "gate-hit" in indexed[4]  # the flagged file is rendered with the first three


def test_the_files_beyond_the_first_page_come_in_a_batch(as_owner, goal):
    step = make_step(goal, 1, many_files_diff(320, 2))
    approval = open_request(goal, step=step, findings=[])
    partial = as_owner.get(f"/approvals/{approval.pk}/files/?start=300", **HTMX)
    assert partial.status_code == 200 and "<html" not in partial.text
    assert partial.text.count('<details class="file"') == 20
    assert 'id="file-319"' in partial.text and "start=320" not in partial.text
    full = as_owner.get(f"/approvals/{approval.pk}/files/?start=300")
    assert "<html" in full.text and 'id="file-300"' in full.text


def test_renames_binaries_and_large_files_are_summarised(as_owner, goal, git_repo):
    (git_repo / "old_name.py").write_text("X = 1\n")
    (git_repo / "big.txt").write_text("")
    run_git(git_repo, "add", "-A")
    run_git(git_repo, "commit", "-q", "-m", "more")
    diff = commit_diff(
        git_repo,
        {"logo.png": b"\x89PNG\r\n\x1a\n\x00\x00binary", "big.txt": "".join(f"line {n}\n" for n in range(2500))},
        renames={"old_name.py": "new_name.py"},
    )
    approval = open_request(goal, step=make_step(goal, 1, diff), findings=[])
    html = page(as_owner, approval)
    assert "old_name.py → new_name.py" in html
    assert "Renamed; the content is unchanged." in html
    assert "Binary file, not shown." in html
    assert "Large file: 2,500 diff lines, not shown." in html
    index = html.index("Show anyway")
    assert "?full=1" in html[index - 300 : index]


def test_lines_the_gates_quoted_are_marked_and_linked(as_owner, goal, git_repo):
    diff = commit_diff(git_repo, {"app.py": "print('hello')\nassert total() >= 0\n"})
    quoted = finding(path="app.py", lines=["+assert total() >= 0"])
    approval = open_request(goal, step=make_step(goal, 1, diff, findings=[quoted]), findings=[quoted])
    html = page(as_owner, approval)
    row = re.search(r'<tr class="ln ln-add gate-hit">.*?</tr>', html, re.S).group(0)
    assert 'id="gate-0-0"' in row and "total" in row
    assert '<a class="gate-link" href="#gate-0-0">in the diff</a>' in html


def test_a_diff_that_cannot_be_read_is_shown_raw(as_owner, goal):
    step = make_step(goal, 1)
    Step.objects.filter(pk=step.pk).update(diff="@@ not a diff <b>")
    approval = open_request(goal, step=step, findings=[])
    html = page(as_owner, approval)
    assert "The diff could not be read" in html
    assert "@@ not a diff &lt;b&gt;" in html


def test_a_log_of_several_commits_is_shown_raw_with_the_parsers_reason(as_owner, goal, git_repo):
    commit_diff(git_repo, {"app.py": "print('one')\n"})
    commit_diff(git_repo, {"app.py": "print('two')\n"})
    log = run_git(git_repo, "log", "-p", "-2")
    step = make_step(goal, 1)
    Step.objects.filter(pk=step.pk).update(diff=log)
    approval = open_request(goal, step=step, findings=[])
    html = page(as_owner, approval)
    assert "The diff could not be read: a log of several commits" in html
    assert "+print(&#x27;two&#x27;)" in html
    assert as_owner.get(f"/approvals/{approval.pk}/files/0/").status_code == 404


# --- deciding ----------------------------------------------------------------------------------------------


def test_approving_on_the_page_with_htmx_returns_the_decision_area(as_owner, approval):
    response = as_owner.post(
        f"/approvals/{approval.pk}/decide", {"verdict": "approve", "comment": "fine"}, HTTP_USER_AGENT=PHONE_UA, **HTMX
    )
    assert response.status_code == 200
    assert is_decision_area(response, approval, decided=True)
    assert "Approved: Dashboard under 1.5 s." in response.text
    assert inbox_count(response.text) == "0"
    assert '<span id="request-status" class="status status-request-approved" hx-swap-oob="true">' in response.text
    assert '"approvalDecided"' in response["HX-Trigger"]
    decision = Decision.objects.get(request=approval)
    assert (decision.verdict, decision.comment, decision.device) == ("approve", "fine", "Chrome on Android")


def test_rejecting_without_javascript_redirects_with_a_message(as_owner, approval):
    response = as_owner.post(
        f"/approvals/{approval.pk}/decide", {"verdict": "reject", "comment": "keep the assertion"}, follow=True
    )
    assert response.redirect_chain == [(f"/approvals/{approval.pk}/", 302)]
    assert "Rejected: Dashboard under 1.5 s." in response.text
    assert "keep the assertion" in response.text
    assert 'class="decision-form"' not in response.text  # settled: no form any more
    approval.refresh_from_db()
    assert approval.status == RequestStatus.REJECTED


def test_stop_pauses_the_goal(as_owner, approval, goal):
    as_owner.post(f"/approvals/{approval.pk}/decide", {"verdict": "stop"})
    goal.refresh_from_db()
    assert goal.status == GoalStatus.PAUSED


def test_the_device_field_wins_over_the_user_agent(as_owner, approval):
    as_owner.post(f"/approvals/{approval.pk}/decide", {"verdict": "approve", "device": "Alice's iPad"})
    assert Decision.objects.get(request=approval).device == "Alice's iPad"


def test_a_budget_request_offers_to_extend_and_extends(as_owner, goal):
    approval = open_request(
        goal,
        kind="budget",
        findings=[finding(reason="Budget used up: 20 of 20 steps. Extend it or end the goal.", gate="budget")],
        details={"budget": "steps", "used": "20", "allowed": "20"},
    )
    html = page(as_owner, approval)
    assert 'name="extend_by"' in html and '<option value="steps" selected>' in html
    assert "Used 20 of 20 steps." in html
    response = as_owner.post(
        f"/approvals/{approval.pk}/decide", {"verdict": "extend", "extend_budget": "steps", "extend_by": "5"}, **HTMX
    )
    assert "Budget extended" in response.text
    goal.refresh_from_db()
    assert goal.budget_steps == 25
    assert Decision.objects.get(request=approval).extend == {"steps": 5}


@pytest.mark.parametrize("amount", ["", "0", "-3", "two"])
def test_an_extension_needs_a_whole_number(as_owner, goal, amount):
    approval = open_request(goal, kind="budget", details={"budget": "steps", "used": "20", "allowed": "20"})
    response = as_owner.post(
        f"/approvals/{approval.pk}/decide", {"verdict": "extend", "extend_budget": "steps", "extend_by": amount}, **HTMX
    )
    assert response.status_code == 200
    assert "Extend the budget by a whole number above 0." in response.text
    assert is_decision_area(response, approval)
    approval.refresh_from_db()
    assert approval.is_pending


@pytest.fixture
def high_risk(goal):
    goal.work_type = "auth_billing"
    goal.save(update_fields=["work_type"])
    return open_request(goal)


def test_high_risk_approval_needs_a_second_tap_without_javascript(as_owner, high_risk):
    url = f"/approvals/{high_risk.pk}/decide"
    first = as_owner.post(url, {"verdict": "approve", "comment": "ok after review"})
    assert first.status_code == 200
    assert "Confirm approve" in first.text and "Tap again to confirm." in first.text
    assert '<input type="hidden" name="confirm" value="1">' in first.text
    assert ">ok after review</textarea>" in first.text
    high_risk.refresh_from_db()
    assert high_risk.is_pending
    second = as_owner.post(url, {"verdict": "approve", "comment": "ok after review", "confirm": "1"})
    assert second.status_code == 302
    high_risk.refresh_from_db()
    assert high_risk.status == RequestStatus.APPROVED


def test_high_risk_approval_needs_a_second_tap_with_htmx(as_owner, high_risk):
    url = f"/approvals/{high_risk.pk}/decide"
    first = as_owner.post(url, {"verdict": "approve"}, **HTMX)
    assert is_decision_area(first, high_risk) and "Confirm approve" in first.text
    high_risk.refresh_from_db()
    assert high_risk.is_pending
    as_owner.post(url, {"verdict": "approve", "confirm": "1"}, **HTMX)
    high_risk.refresh_from_db()
    assert high_risk.status == RequestStatus.APPROVED


def test_a_high_risk_reject_takes_one_tap(as_owner, high_risk):
    as_owner.post(f"/approvals/{high_risk.pk}/decide", {"verdict": "reject"})
    high_risk.refresh_from_db()
    assert high_risk.status == RequestStatus.REJECTED


def test_two_approvers_are_needed_on_a_high_risk_goal_with_two_approvers(client, goal, owner, approver):
    second = make_user("second")
    goal.approvers.add(second)
    goal.work_type = "migration"
    goal.save(update_fields=["work_type"])
    approval = open_request(goal)
    assert approval.required_approvals == 2
    client.force_login(approver)
    html = page(client, approval)
    assert "0 of 2 approvals" in html
    assert "After the first approval, a second approver is needed." in html
    url = f"/approvals/{approval.pk}/decide"
    response = client.post(url, {"verdict": "approve", "confirm": "1"}, **HTMX)
    assert "You approved — waiting for a second approver." in response.text
    assert '<p id="votes" class="votes" hx-swap-oob="true">1 of 2 approvals: approver</p>' in response.text
    assert 'value="approve"' not in response.text  # no second vote from the same person
    again = client.post(url, {"verdict": "approve", "confirm": "1"}, **HTMX)
    assert "You already approved" in again.text
    client.force_login(owner)
    html = page(client, approval)
    assert "1 of 2 approvals: approver" in html and "approver approved; a second approver is needed." in html
    client.post(url, {"verdict": "approve", "confirm": "1"})
    approval.refresh_from_db()
    assert approval.status == RequestStatus.APPROVED


@pytest.mark.parametrize(
    ("user_agent", "device"),
    [
        pytest.param(PHONE_UA, "Chrome on Android", id="chrome on android"),
        pytest.param("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                     "Version/17.5 Mobile/15E148 Safari/604.1", "Safari on iPhone", id="safari on iphone"),
        pytest.param("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 "
                     "Safari/537.36 Edg/126.0", "Edge on Windows", id="edge is not chrome"),
        pytest.param("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox on Linux",
                     id="firefox on linux"),
        pytest.param("curl/8.5.0", "curl/8.5.0", id="anything else as given"),
        pytest.param("", "", id="nothing"),
    ],
)
def test_the_device_is_named_from_the_user_agent(user_agent, device):
    assert describe_device(user_agent) == device


# --- refusals ----------------------------------------------------------------------------------------------


def test_an_already_decided_request_says_who_decided_with_htmx(client, approval, owner, approver):
    approval.decide(approver, "reject")
    client.force_login(owner)
    response = client.post(f"/approvals/{approval.pk}/decide", {"verdict": "approve"}, **HTMX)
    assert response.status_code == 200  # htmx swaps 2xx only: the refusal is a fragment, not an error status
    assert re.search(r'role="alert">Already decided: approver chose “reject” at \d\d:\d\d:\d\d\.</p>', response.text)
    assert '"approvalRefused"' in response["HX-Trigger"] and "already_decided" in response["HX-Trigger"]


def test_an_already_decided_request_says_who_decided_without_javascript(client, approval, owner, approver):
    approval.decide(approver, "reject")
    client.force_login(owner)
    response = client.post(f"/approvals/{approval.pk}/decide", {"verdict": "approve"}, follow=True)
    assert response.redirect_chain == [(f"/approvals/{approval.pk}/", 302)]
    assert "Already decided: approver chose “reject” at" in response.text


def test_an_expired_request_is_refused(as_owner, approval):
    ApprovalRequest.objects.filter(pk=approval.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    response = as_owner.post(f"/approvals/{approval.pk}/decide", {"verdict": "approve"}, **HTMX)
    assert "This request expired unanswered" in response.text
    approval.refresh_from_db()
    assert approval.status == RequestStatus.EXPIRED


def test_a_superseded_request_is_refused(as_owner, approval, goal):
    open_request(goal, summary="newer")
    response = as_owner.post(f"/approvals/{approval.pk}/decide", {"verdict": "approve"}, follow=True)
    assert "A newer request replaced this one" in response.text


def test_an_unknown_verdict_is_refused_not_a_500(as_owner, approval):
    response = as_owner.post(f"/approvals/{approval.pk}/decide", {"verdict": "maybe"}, **HTMX)
    assert response.status_code == 200
    assert "Unknown decision “maybe”" in response.text


def test_deciding_needs_a_post(as_owner, approval):
    assert as_owner.get(f"/approvals/{approval.pk}/decide").status_code == 405


# --- escaping ----------------------------------------------------------------------------------------------


def test_everything_people_and_agents_wrote_is_escaped(client, goal, git_repo, owner, approver):
    goal.title = f"Title {SCRIPT}"
    goal.objective = f"Objective {IMG}"
    goal.save(update_fields=["title", "objective"])
    diff = commit_diff(git_repo, {"app.py": f"print('{SCRIPT}')\n", f"x{IMG[2:9]}.html": f"<p>{IMG}</p>\n"})
    evil = finding(reason=f"Reason {SCRIPT}", gate=IMG, path="app.py", lines=[f"+print('{SCRIPT}')"])
    step = make_step(goal, 1, diff, evidence=[run_record(name=SCRIPT, summary=IMG, output=SCRIPT)], findings=[evil])
    approval = open_request(goal, step=step, findings=[evil], summary=f"Summary {IMG}", plan=f"Plan {SCRIPT}")
    approval.decide(approver, "reject", comment=f"Comment {SCRIPT} {IMG}")
    client.force_login(owner)
    pages = [page(client, approval), client.get(f"/approvals/{approval.pk}/files/1/", **HTMX).text,
             client.get(f"/approvals/{approval.pk}/files/1/").text]  # fmt: skip
    for html in pages:
        assert "<script>alert" not in html
        assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[0]
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in pages[0]
    assert "x&lt;img sr.html" in pages[0] and "x&lt;img sr.html" in pages[2]  # the path, too
    assert "<img sr" not in pages[0] + pages[2]


# --- a request made by the loop ----------------------------------------------------------------------------


def test_a_request_from_the_loop_marks_the_weakened_assertion(client, owner, shop_repo):
    goal = make_scripted_goal(owner, shop_repo, [WEAKEN])
    approval = step_once(goal).request
    assert "tests_weakened" in approval.gates
    client.force_login(owner)
    html = page(client, approval)
    row = re.search(r'<tr class="ln ln-del gate-hit">.*?</tr>', html, re.S).group(0)
    assert "total" in row and "5" in row
    assert re.search(r'<a class="gate-link" href="#gate-\d+-0">in the diff</a>', html)
    assert "✓ Passed" in html  # the relaxed test passes
    response = client.post(f"/approvals/{approval.pk}/decide", {"verdict": "reject", "comment": "keep == 5"}, **HTMX)
    assert "Rejected" in response.text
    goal.refresh_from_db()
    assert goal.status == GoalStatus.RUNNING
