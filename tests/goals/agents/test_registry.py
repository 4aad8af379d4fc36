import subprocess
import sys
from pathlib import Path

import pytest

from goals.agents import AGENTS, AgentError, get_agent

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "name, agent_settings, class_name",
    [
        pytest.param("scripted", {"steps": []}, "ScriptedAgent", id="scripted"),
        pytest.param("command", {"preset": "codex"}, "CommandAgent", id="command"),
        pytest.param("openai", {"base_url": "http://127.0.0.1:11434/v1", "model": "qwen2.5-coder"}, "OpenAIAgent", id="openai"),
    ],
)
def test_it_builds_the_named_agent(name, agent_settings, class_name):
    agent = get_agent(name, agent_settings)
    assert type(agent).__name__ == class_name
    assert agent.name == name
    assert AGENTS[name].endswith(class_name)


@pytest.mark.parametrize(
    "name, agent_settings, reason",
    [
        pytest.param("copilot", {}, "Unknown agent 'copilot'", id="an-unknown-agent"),
        pytest.param("scripted", ["not", "a", "dict"], "must be a JSON object", id="settings-that-are-not-an-object"),
        pytest.param("openai", {"base_url": "http://x/v1", "model": "m", "modle": "m"}, "Unknown openai agent setting 'modle'", id="a-misspelt-setting"),
    ],
)
def test_bad_names_and_settings_are_permanent_errors(name, agent_settings, reason):
    with pytest.raises(AgentError, match=reason) as error:
        get_agent(name, agent_settings)
    assert error.value.permanent


def test_adapters_load_on_first_use_and_never_load_django():
    script = (
        "import sys\n"
        "import goals.agents\n"
        "assert 'goals.agents.openai' not in sys.modules and 'requests' not in sys.modules\n"
        "goals.agents.get_agent('command', {'preset': 'aider'})\n"
        "assert 'goals.agents.command' in sys.modules and 'goals.agents.openai' not in sys.modules\n"
        "import goals.agents.openai, goals.agents.scripted\n"
        "assert not [m for m in sys.modules if m == 'django' or m.startswith('django.')], 'django imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
