import socket

import pytest

from goals.agents.base import AgentError
from goals.agents.openai import OpenAIAgent, extract_diff
from tests.factories import GREETING_PATCH, make_agent_context, run_git
from tests.support.fakes.chat_server import Reply, completion

FENCED_REPLY = f"""\
I'll change the greeting.

```diff
{GREETING_PATCH}```

FOLLOW-UP: the README still says hello
DONE

Changed the greeting in app.py to hi.
"""


@pytest.fixture
def agent_for(chat_server):
    def make(**agent_settings) -> OpenAIAgent:
        return OpenAIAgent({"base_url": chat_server.base_url, "model": "qwen2.5-coder:7b", **agent_settings})

    return make


def test_it_applies_the_models_diff_and_reports(chat_server, agent_for, worktree):
    chat_server.answer(FENCED_REPLY)
    ctx = make_agent_context(worktree, env={"OPENAI_API_KEY": "sk-test-123"})
    result = agent_for().run_step(ctx)
    assert (worktree / "app.py").read_text() == "print('hi')\n"
    assert result.tokens == 876
    assert result.done
    assert result.reported_bugs == ("the README still says hello",)
    assert result.summary == "I'll change the greeting.\n\nChanged the greeting in app.py to hi."
    assert run_git(worktree, "log", "--oneline").count("\n") == 1  # the loop commits, not the agent


def test_it_sends_a_chat_completion_request(chat_server, agent_for, worktree):
    chat_server.answer(FENCED_REPLY)
    agent_for(max_tokens=2048, api_key="sk-test-123").run_step(make_agent_context(worktree, env={}))
    [request] = chat_server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test-123"
    body = request["json"]
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("qwen2.5-coder:7b", 0, 2048)
    system, user = body["messages"]
    assert system["role"] == "system" and "exactly one unified diff" in system["content"]
    assert user["role"] == "user"
    assert "Objective: Change the greeting printed by app.py" in user["content"]
    assert "===== app.py =====\nprint('hello')\n===== end of app.py =====" in user["content"]


def test_it_never_reads_a_key_from_an_environment_variable(chat_server, agent_for, worktree, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-server")
    monkeypatch.setenv("DATABASE_URL", "postgres://user:password@db/goalpost")
    chat_server.answer(FENCED_REPLY)
    agent_for().run_step(make_agent_context(worktree, env={"OPENAI_API_KEY": "sk-from-step", "SECRET_KEY": "s3cret"}))
    assert "Authorization" not in chat_server.requests[0]["headers"]
    with pytest.raises(AgentError, match="Unknown openai agent setting 'api_key_env'"):
        agent_for(api_key_env="DATABASE_URL")


def test_the_key_is_never_in_its_repr_or_settings():
    agent = OpenAIAgent({"base_url": "http://h/v1", "model": "m", "api_key": "sk-very-secret"})
    assert "sk-very-secret" not in repr(agent) and "sk-very-secret" not in repr(agent.settings)


def test_a_local_server_needs_no_key(chat_server, agent_for, worktree, monkeypatch):
    chat_server.answer(FENCED_REPLY)
    agent_for().run_step(make_agent_context(worktree, env={}))
    assert "Authorization" not in chat_server.requests[0]["headers"]


@pytest.mark.parametrize(
    "reply, usage, tokens",
    [
        pytest.param(f"Here it is:\n\n{GREETING_PATCH}\nDONE", None, 876, id="a-bare-diff"),
        pytest.param(
            "```diff\n--- app.py\n+++ app.py\n@@ -1 +1 @@\n-print('hello')\n+print('hi')\n```\nDONE", None, 876,
            id="a-diff-naming-files-bare",
        ),
        pytest.param(f"```\n{GREETING_PATCH}```\nDONE", None, 876, id="a-fence-without-a-language"),
        pytest.param(f"```diff\n{GREETING_PATCH}```\nDONE", {"prompt_tokens": 100, "completion_tokens": 20}, 120, id="usage-without-a-total"),
        pytest.param(f"```diff\n{GREETING_PATCH}```\nDONE", {}, 0, id="no-usage"),
    ],
)
def test_it_finds_the_diff_however_the_model_writes_it(chat_server, agent_for, worktree, reply, usage, tokens):
    chat_server.answer(reply, usage=usage)
    result = agent_for().run_step(make_agent_context(worktree))
    assert (worktree / "app.py").read_text() == "print('hi')\n"
    assert result.tokens == tokens
    assert result.done


def test_content_sent_as_parts_is_read(chat_server, agent_for, worktree):
    body = completion("")
    body["choices"][0]["message"]["content"] = [{"type": "text", "text": f"```diff\n{GREETING_PATCH}```\n"}]
    chat_server.replies.append(Reply(200, body))
    agent_for().run_step(make_agent_context(worktree))
    assert (worktree / "app.py").read_text() == "print('hi')\n"


def test_done_without_a_diff_changes_nothing(chat_server, agent_for, worktree):
    chat_server.answer("The greeting already says what the goal asks.\nSTATUS: done")
    result = agent_for().run_step(make_agent_context(worktree))
    assert result.done
    assert result.summary == "The greeting already says what the goal asks."
    assert run_git(worktree, "status", "--porcelain") == ""


@pytest.mark.parametrize(
    "reply, permanent, reason",
    [
        pytest.param(Reply(401, {"error": {"message": "Incorrect API key provided"}}), True, "401 .*Incorrect API key", id="401-bad-key"),
        pytest.param(Reply(403, {"error": {"message": "Project lacks access"}}), True, "403", id="403-forbidden"),
        pytest.param(Reply(404, {"error": {"message": "model 'qwen2.5-coder:7b' not found"}}), True, "404 .*not found", id="404-no-such-model"),
        pytest.param(Reply(429, {"error": {"message": "Rate limit reached"}}), False, "rate limiting \\(429\\): Rate limit reached", id="429-rate-limited"),
        pytest.param(Reply(500, {"error": "internal"}), False, "failed \\(500\\): internal", id="500-server-error"),
        pytest.param(Reply(503, raw=b"<html>Service Unavailable</html>"), False, "503", id="503-unavailable"),
        pytest.param(Reply(400, {"error": {"message": "context length exceeded"}}), False, "context length", id="400-bad-request"),
        pytest.param(Reply(200, raw=b'{"id": "chatcmpl-1", "choices": ['), False, "malformed JSON", id="malformed-json"),
        pytest.param(Reply(200, ["not", "an", "object"]), False, "not a chat completion", id="json-that-is-no-completion"),
        pytest.param(Reply(200, {**completion("x"), "choices": []}), False, "no choices", id="no-choices"),
        pytest.param(Reply(200, completion("")), False, "no text", id="an-empty-message"),
        pytest.param(Reply(200, completion("I would change app.py to say hi.")), False, "holds no diff", id="no-diff"),
        pytest.param(Reply(200, completion(f"```diff\n{GREETING_PATCH.replace('hello', 'howdy')}```")), False, "does not apply", id="a-diff-that-does-not-apply"),
        pytest.param(
            Reply(200, completion(f"```diff\n{GREETING_PATCH.replace('hello', 'howdy')}```", finish="length")),
            False, "cut at max_tokens", id="a-diff-cut-at-max-tokens",
        ),
        pytest.param(
            Reply(200, completion("```diff\ndiff --git a/logo.png b/logo.png\nnew file mode 100644\nGIT binary patch\nliteral 4\nLcmZ?wbhEHbZ\n```")),
            False, "binary", id="a-binary-patch",
        ),
        pytest.param(
            Reply(200, completion("```diff\n--- /dev/null\n+++ b/../../outside.txt\n@@ -0,0 +1 @@\n+x\n```")),
            False, "“..”", id="a-path-outside-the-worktree",
        ),
        pytest.param(
            Reply(200, completion("```diff\ndiff --git a/exit b/exit\nnew file mode 120000\n--- /dev/null\n+++ b/exit\n@@ -0,0 +1 @@\n+/etc\n\\ No newline at end of file\n```")),
            False, "symlink leading outside", id="a-symlink-leading-outside",
        ),
    ],
)
def test_failures_are_agent_errors(chat_server, agent_for, worktree, reply, permanent, reason):
    chat_server.replies.append(reply)
    with pytest.raises(AgentError, match=reason) as error:
        agent_for().run_step(make_agent_context(worktree))
    assert error.value.permanent is permanent
    assert (worktree / "app.py").read_text() == "print('hello')\n"
    assert run_git(worktree, "status", "--porcelain") == ""


def test_a_server_that_never_answers_times_out(chat_server, agent_for, worktree):
    chat_server.replies.append(Reply(hang=True))
    with pytest.raises(AgentError, match="did not answer within 0.5 s") as error:
        agent_for(timeout_s=0.5).run_step(make_agent_context(worktree))
    assert not error.value.permanent


def test_a_refused_connection_is_worth_a_retry(worktree):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    agent = OpenAIAgent({"base_url": f"http://127.0.0.1:{port}/v1", "model": "m"})
    with pytest.raises(AgentError, match="Cannot reach") as error:
        agent.run_step(make_agent_context(worktree))
    assert not error.value.permanent


@pytest.mark.parametrize(
    "reply, diff, prose",
    [
        pytest.param("```diff\n--- a/x\n+++ b/x\n```\nok", "--- a/x\n+++ b/x\n", "\nok", id="fenced"),
        pytest.param("```python\nprint(1)\n```\nno diff", "", "```python\nprint(1)\n```\nno diff", id="a-code-fence-is-no-diff"),
        pytest.param("Sure.\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n\nThat's it.", "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n", "Sure.\nThat's it.", id="bare-up-to-the-prose"),
    ],
)
def test_it_extracts_the_diff_from_the_reply(reply, diff, prose):
    assert extract_diff(reply) == (diff, prose)


@pytest.mark.parametrize(
    "agent_settings, reason",
    [
        pytest.param({"model": "m"}, "base_url must be an http", id="no-base-url"),
        pytest.param({"base_url": "ftp://host/v1", "model": "m"}, "base_url must be an http", id="not-http"),
        pytest.param({"base_url": "http://[::1/v1", "model": "m"}, "base_url must be an http", id="an-unparsable-url"),
        pytest.param({"base_url": "http://127.0.0.1:11434/v1"}, "name the model", id="no-model"),
        pytest.param({"base_url": "http://h/v1", "model": "m", "api_key_env": "OPENAI_API_KEY"}, "api_key_env", id="a-variable-name"),
        pytest.param({"base_url": "http://h/v1", "model": "m", "api_key": 42}, "api_key must be a string", id="a-key-not-a-string"),
        pytest.param({"base_url": "http://h/v1", "model": "m", "temperature": "low"}, "temperature", id="a-temperature-in-words"),
        pytest.param({"base_url": "http://h/v1", "model": "m", "max_tokens": 0}, "max_tokens", id="zero-max-tokens"),
        pytest.param({"base_url": "http://h/v1", "model": "m", "timeout_s": -1}, "timeout_s", id="a-negative-timeout"),
    ],
)
def test_bad_settings_are_permanent_errors(agent_settings, reason):
    with pytest.raises(AgentError, match=reason) as error:
        OpenAIAgent(agent_settings)
    assert error.value.permanent


def test_a_fence_closes_only_at_its_own_indent():
    markdown_diff = "--- a/README.md\n+++ b/README.md\n@@ -1,3 +1,3 @@\n ```sh\n-make run\n+make serve\n ```\n"
    reply = f"Updated the README.\n\n```diff\n{markdown_diff}```\nDONE"
    assert extract_diff(reply)[0] == markdown_diff


def test_an_indented_fence_is_read_without_its_indent():
    reply = "1. The change:\n\n   ```diff\n   --- a/x\n   +++ b/x\n   @@ -1 +1 @@\n   -a\n   +b\n   ```\n"
    assert extract_diff(reply)[0] == "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"
