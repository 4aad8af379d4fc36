# ApprovalRequest, Decision, PushSubscription and AgentToken arrive with the gates and phone issues.
