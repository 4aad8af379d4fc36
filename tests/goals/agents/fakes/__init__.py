"""Stand-ins for the far edge: command-line agents (installed as executables by the tests) and a chat server."""
