"""A goal's viewers: chosen by the owner on the goal form; they see the goal and its requests, never decide."""

from django.urls import reverse

from approvals.delivery import deciders_with_settings
from approvals.live import audience
from goals.models import Goal
from tests.factories import client_for, form_data, make_user


def test_the_owner_names_viewers_on_the_goal_form(world):
    watcher = make_user("watcher")
    data = form_data(world.goal.repository, viewers=[str(watcher.pk)], approvers=[str(world.users["approver"].pk)])
    response = client_for(world, "owner").post(reverse("goals:create"), data)
    assert response.status_code == 302
    goal = Goal.objects.get(pk=response.headers["Location"].strip("/").split("/")[-1])
    assert list(goal.viewers.all()) == [watcher]
    page = client_for(world, "owner").get(reverse("goals:detail", args=[goal.pk])).content.decode()
    assert "Viewers" in page and "watcher" in page


def test_a_person_is_an_approver_or_a_viewer_not_both(world):
    both = str(world.users["approver"].pk)
    response = client_for(world, "owner").post(reverse("goals:create"), form_data(world.goal.repository, viewers=[both], approvers=[both]))
    assert response.status_code == 422
    assert "cannot be a viewer too" in response.content.decode()


def test_a_viewer_sees_the_request_but_no_decision_form_inbox_card_or_count(world):
    viewer = client_for(world, "viewer")
    page = viewer.get(reverse("approvals:detail", args=[world.request.pk])).content.decode()
    assert "1 file" in page and 'class="decision-form"' not in page
    approver_page = client_for(world, "approver").get(reverse("approvals:detail", args=[world.request.pk]))
    assert 'class="decision-form"' in approver_page.content.decode()
    inbox = viewer.get(reverse("home"))
    assert inbox.context["cards"] == [] and "pending_count" in inbox.context and inbox.context["pending_count"] == 0
    approver_inbox = client_for(world, "approver").get(reverse("home"))
    assert [card.request for card in approver_inbox.context["cards"]] == [world.request]


def test_a_viewer_gets_no_push_and_no_live_updates(world):
    viewer = world.users["viewer"]
    assert viewer not in [user for user, _ in deciders_with_settings(world.goal)]
    assert viewer.pk not in audience(world.goal)
