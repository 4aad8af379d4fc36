"""The agent adapters, by name. Each is imported on first use, so a worker loads only the one it runs."""

from __future__ import annotations

import importlib

from goals.agents.base import Agent, AgentContext, AgentError, AgentResult

__all__ = ["AGENTS", "Agent", "AgentContext", "AgentError", "AgentResult", "get_agent"]

AGENTS = {
    "scripted": "goals.agents.scripted.ScriptedAgent",
    "command": "goals.agents.command.CommandAgent",
    "openai": "goals.agents.openai.OpenAIAgent",
}


def get_agent(name: str, settings: dict) -> Agent:
    """The adapter called ``name``, set up with ``settings``; AgentError(permanent=True) for an unknown name
    or bad settings."""
    dotted = AGENTS.get(name) if isinstance(name, str) else None
    if dotted is None:
        raise AgentError(f"Unknown agent {name!r}: choose one of {', '.join(AGENTS)}.", permanent=True)
    module_name, class_name = dotted.rsplit(".", 1)
    agent_class = getattr(importlib.import_module(module_name), class_name)
    return agent_class(settings if settings is not None else {})
