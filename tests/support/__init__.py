"""What the tests run beside Goalpost: real processes (daphne, celery, Redis), fakes of the far edge (a push
service, agent command lines, a chat API, Codex's app-server) and tables or strategies that several test modules
share. No tests and no fixtures here: fixtures live in conftest.py, builders of rows in tests/factories.py."""
