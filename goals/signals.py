"""What the loop announces for the people side to deliver (the phone buzzes on a stall).

Sent inside the transaction that caused it; a receiver that talks to the outside world defers to on_commit.
"""

from django.dispatch import Signal

# A goal stalled: waiting past its SLA, no progress, or failures repeating (`goal`, `reason`).
goal_stalled = Signal()
