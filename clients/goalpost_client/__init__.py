"""Goalpost's client: what runs on the agent's machine. Standard library only; it never imports the server."""
