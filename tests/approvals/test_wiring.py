"""The receivers are connected in AppConfig.ready(), in the order they must run, not the order modules import in."""

from django.db.models.signals import post_save

from approvals import signals
from goals import signals as goal_signals


def uids(signal) -> list[str]:
    return [
        key[0]
        for key, *_ in signal.receivers
        if isinstance(key[0], str) and key[0].split(".")[0] in ("goals", "approvals", "gateway")
    ]


def test_a_settled_request_reaches_the_loop_first_then_live_pages_then_phones_then_waiting_agents():
    assert uids(signals.decision_made) == [
        "goals.on_decision",
        "approvals.live.decision_made",
        "approvals.delivery.revoke_on_decision",
        "gateway.calls.count_approved",
        "gateway.changes.accepted",
        "gateway.calls.finish_done_review",
        "gateway.calls.decision_made",
    ]
    assert uids(signals.request_expired) == [
        "goals.on_expiry",
        "approvals.live.request_expired",
        "approvals.delivery.revoke_on_expiry",
        "gateway.calls.request_expired",
    ]
    assert uids(signals.request_superseded) == [
        "approvals.live.request_superseded",
        "approvals.delivery.revoke_on_supersede",
        "gateway.calls.request_superseded",
    ]


def test_an_opened_request_and_a_stall_and_goal_progress_each_have_their_receivers():
    assert uids(signals.request_opened) == ["approvals.live.request_opened", "approvals.delivery.request_opened"]
    assert uids(goal_signals.goal_stalled) == ["approvals.delivery.goal_stalled"]
    assert uids(post_save) == ["approvals.live.goal_status", "approvals.live.step_progress"]
