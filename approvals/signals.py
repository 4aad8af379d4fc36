"""What the human side announces; the loop and the delivery (websocket, push) listen.

Every signal is sent inside the transaction that caused it, with `request` (an ApprovalRequest), so that what a
receiver writes commits or rolls back with the decision itself. A receiver that talks to the outside world (a
websocket, a push service, the task queue) does so from `transaction.on_commit`.
"""

from django.dispatch import Signal

# A new approval request is pending: deliver it to the goal's deciders.
request_opened = Signal()
# A request reached its outcome (`decision`: the Decision that settled it): the loop carries on.
decision_made = Signal()
# One approver of several voted; the request still waits for another (`decision`).
vote_recorded = Signal()
# A request passed its deadline unanswered (`rule`: the goal's on-timeout rule applied).
request_expired = Signal()
# A pending request was replaced by a newer one for the same goal.
request_superseded = Signal()
