import re

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import connection

from config.urls import api
from goals.agents import AgentError, get_agent
from goals.forms import GoalForm
from goals.models import AgentProfile, Goal
from tests.factories import form_data, make_user, scripted_profile

pytestmark = pytest.mark.django_db


# --- who may pick a profile ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "enabled, listed, expected",
    [
        pytest.param(True, "", {"owner", "outsider", "staff"}, id="enabled-nobody-listed-is-everyone"),
        pytest.param(True, "user", {"owner", "staff"}, id="enabled-listed-user"),
        pytest.param(True, "group", {"owner", "staff"}, id="enabled-through-a-group"),
        pytest.param(False, "user", {"owner"}, id="disabled-only-its-listed-users"),
        pytest.param(False, "group", set(), id="disabled-not-through-a-group"),
        pytest.param(False, "", set(), id="disabled-nobody-listed-is-nobody"),
    ],
)
def test_usable_by(make_profile, owner, outsider, staff, enabled, listed, expected):
    team = Group.objects.create(name="team")
    owner.groups.add(team)
    profile = make_profile(
        "scripted", enabled=enabled, users=[owner] if listed == "user" else [], groups=[team] if listed == "group" else []
    )
    users = {"owner": owner, "outsider": outsider, "staff": staff}
    assert {name for name, user in users.items() if profile in AgentProfile.objects.usable_by(user)} == expected


def test_the_form_offers_only_the_profiles_the_owner_may_pick_and_their_models(make_profile, owner, outsider):
    everyone = make_profile("openai", name="Local", base_url="http://127.0.0.1:11434/v1", models=["qwen", "llama"])
    mine = make_profile("command", name="Codex", preset="codex", models=["gpt-5-codex"], users=[owner])
    make_profile("command", name="Claude", preset="claude", users=[outsider])
    make_profile("scripted", name="Off", enabled=False)
    form = GoalForm(owner=owner)
    assert list(form.fields["agent_profile"].queryset) == [mine, everyone]
    assert form.fields["agent_model"].choices == [
        ("", "The agent's default"), ("Codex", [("gpt-5-codex", "gpt-5-codex")]), ("Local", [("qwen", "qwen"), ("llama", "llama")])
    ]


def test_a_model_of_another_profile_is_refused_and_the_rest_kept(client, owner, repository, make_profile):
    local = make_profile("openai", name="Local", base_url="http://127.0.0.1:11434/v1", models=["qwen"])
    make_profile("command", name="Codex", preset="codex", models=["gpt-5-codex"])
    client.force_login(owner)
    data = form_data(repository, agent_profile=str(local.pk), agent_model="gpt-5-codex", title="Kept")
    response = client.post("/goals/new/", data)
    assert response.status_code == 422
    assert "Local offers these models: qwen." in response.context["form"].errors["agent_model"]
    assert 'value="Kept"' in response.text
    assert client.post("/goals/new/", {**data, "agent_model": "qwen"}).status_code == 302
    assert Goal.objects.get().agent_model == "qwen"


def test_a_script_is_for_scripted_profiles_only(client, owner, repository, make_profile):
    codex = make_profile("command", name="Codex", preset="codex")
    client.force_login(owner)
    response = client.post("/goals/new/", form_data(repository, agent_profile=str(codex.pk), agent_script='[{"summary": "x"}]'))
    assert response.status_code == 422
    assert "takes no script" in response.context["form"].errors["agent_script"][0]


# --- what staff may write -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "adapter, fields, field, message",
    [
        pytest.param("command", {}, "preset", "Choose how to call", id="command-without-preset"),
        pytest.param("scripted", {"preset": "codex"}, "preset", "command agents only", id="preset-on-scripted"),
        pytest.param("openai", {"models": ["m"]}, "base_url", "Name the endpoint", id="openai-without-endpoint"),
        pytest.param("openai", {"base_url": "http://llm:8000/v1"}, "models", "at least one model", id="openai-without-model"),
        pytest.param("scripted", {"base_url": "http://llm:8000/v1"}, "base_url", "the Codex and Claude Code presets", id="endpoint-on-scripted"),
        pytest.param("command", {"preset": "aider", "api_key": "k"}, "base_url", "the Codex and Claude Code presets", id="key-on-aider"),
        pytest.param("command", {"preset": "codex", "base_url": "file:///etc/passwd"}, "base_url", "http(s) URL", id="codex-endpoint-not-http"),
        pytest.param("openai", {"base_url": "http://llm:8000/v1", "models": ["m"], "api_key": "k", "api_key_env": "K"}, "api_key_env", "not both", id="key-and-variable"),
        pytest.param("openai", {"base_url": "http://llm:8000/v1", "models": ["m"], "api_key_env": "MY KEY"}, "api_key_env", "environment variable name", id="bad-variable-name"),
        pytest.param("scripted", {"egress_hosts": ["pypi.org"]}, "egress_hosts", "is not host:port", id="egress-without-port"),
        pytest.param("scripted", {"egress_hosts": ["pypi.org:99999"]}, "egress_hosts", "is not host:port", id="egress-port-out-of-range"),
        pytest.param("scripted", {"options": {"timeout_s": 5}}, "options", "Unknown option timeout_s", id="option-of-another-adapter"),
        pytest.param("command", {"preset": "custom", "options": {"command": ["run"]}}, "options", '"{prompt}"', id="custom-without-prompt"),
        pytest.param("command", {"preset": "custom"}, "options", "command (the custom argv)", id="custom-without-command"),
        pytest.param("openai", {"base_url": "http://llm:8000/v1", "models": ["m"], "options": {"temperature": "hot"}}, "options", "temperature", id="adapter-refuses-option"),
    ],
)
def test_clean_refuses_settings_the_adapter_cannot_use(adapter, fields, field, message):
    with pytest.raises(ValidationError) as error:
        AgentProfile(name="p", adapter=adapter, **fields).full_clean()
    assert field in error.value.message_dict, error.value.message_dict
    assert message in " ".join(error.value.message_dict[field])


def test_private_egress_is_allowed_to_staff(make_profile):
    profile = make_profile("scripted", egress_hosts=["10.0.0.5:3128", "Proxy.Corp:8080"])
    assert profile.egress_hosts == ["10.0.0.5:3128", "proxy.corp:8080"]


# --- the settings the adapter gets ----------------------------------------------------------------------------


def goal_for(profile, **fields) -> Goal:
    return Goal(agent_profile=profile, **fields)


def test_a_command_profile_gives_its_preset_executable_args_and_the_chosen_model(make_profile):
    profile = make_profile(
        "command", preset="codex", executable="/opt/codex/bin/codex", extra_args=["--x"], models=["a", "b"],
        options={"timeout_s": 60},
    )
    assert profile.adapter_settings(goal_for(profile, agent_model="b")) == {
        "preset": "codex", "executable": "/opt/codex/bin/codex", "args": ["--x", "--model", "b"], "timeout_s": 60
    }
    assert get_agent("command", profile.adapter_settings(goal_for(profile))).args == ["--x", "--model", "a"]


@pytest.mark.parametrize("preset", ["codex", "claude"])
def test_a_codex_or_claude_profile_gives_its_model_api_and_the_key_the_server_resolves(make_profile, monkeypatch, preset):
    monkeypatch.setenv("MODEL_KEY", "sk-from-env")
    profile = make_profile("command", preset=preset, base_url="http://127.0.0.1:8080/v1/", api_key_env="MODEL_KEY")
    settings = profile.adapter_settings(goal_for(profile))
    assert settings["provider"] == {"base_url": "http://127.0.0.1:8080/v1/", "api_key": "sk-from-env"}
    agent = get_agent("command", settings)
    assert (agent.provider.base_url, agent.provider.api_key) == ("http://127.0.0.1:8080/v1", "sk-from-env")
    assert "sk-from-env" not in repr(agent.provider)
    bare = make_profile("command", name="bare", preset=preset)
    assert "provider" not in bare.adapter_settings(goal_for(bare))


def test_a_model_api_is_refused_to_the_presets_that_take_none():
    with pytest.raises(AgentError, match="for the claude and codex presets only"):
        get_agent("command", {"preset": "aider", "provider": {"base_url": "http://x", "api_key": ""}})
    with pytest.raises(AgentError, match="not an http"):
        get_agent("command", {"preset": "codex", "provider": {"base_url": "ftp://x", "api_key": ""}})


def test_a_model_the_profile_does_not_offer_is_a_permanent_error(make_profile):
    profile = make_profile("command", preset="codex", models=["a"])
    with pytest.raises(AgentError, match="offers no model 'z'") as error:
        profile.adapter_settings(goal_for(profile, agent_model="z"))
    assert error.value.permanent


def test_the_openai_key_is_resolved_by_the_server_from_the_secret_or_the_staff_named_variable(make_profile, monkeypatch):
    monkeypatch.setenv("LOCAL_LLM_KEY", "sk-from-env")
    stored = make_profile("openai", base_url="http://llm:8000/v1", models=["m"], api_key="sk-stored")
    named = make_profile("openai", base_url="http://llm:8000/v1", models=["m"], api_key_env="LOCAL_LLM_KEY")
    none = make_profile("openai", base_url="http://llm:8000/v1", models=["m"])
    assert stored.adapter_settings(goal_for(stored))["api_key"] == "sk-stored"
    assert named.adapter_settings(goal_for(named))["api_key"] == "sk-from-env"
    assert none.adapter_settings(goal_for(none)) == {"base_url": "http://llm:8000/v1", "model": "m", "api_key": ""}


def test_a_scripted_profile_replays_the_goals_steps_but_reads_server_files_only_from_its_options(make_profile, tmp_path):
    profile = make_profile("scripted")
    steps = [{"summary": "one", "write": {"a.txt": "a"}}]
    assert profile.adapter_settings(goal_for(profile, agent_script=steps)) == {"steps": steps}
    with pytest.raises(AgentError, match="patch_file reads files on the server"):
        profile.adapter_settings(goal_for(profile, agent_script=[{"patch_file": "/etc/shadow"}]))
    (tmp_path / "script").mkdir()
    folder = make_profile("scripted", options={"folder": str(tmp_path / "script")})
    assert folder.adapter_settings(goal_for(folder, agent_script=steps)) == {"folder": str(tmp_path / "script")}


# --- secrets at rest ------------------------------------------------------------------------------------------


def test_the_api_key_is_encrypted_in_the_database_and_never_on_the_admin_page(make_profile, admin_client):
    profile = make_profile("openai", base_url="http://llm:8000/v1", models=["m"], api_key="sk-plaintext-987")
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM goals_agentprofile WHERE id = %s", [profile.pk])
        (stored,) = cursor.fetchone()
    assert stored and "sk-plaintext-987" not in stored
    assert AgentProfile.objects.get(pk=profile.pk).api_key == "sk-plaintext-987"
    page = admin_client.get(f"/admin/goals/agentprofile/{profile.pk}/change/").text
    assert "sk-plaintext-987" not in page and "A secret is stored" in page


# --- nothing an owner writes reaches the server's environment, programs or URLs --------------------------------

# Names that would let a goal's owner choose what the worker reads, runs or calls.
SERVER_REACHING = re.compile(
    r"(^|_)(env|executable|command|url|endpoint|folder|file|path|args|options?|egress|unsandboxed|key|token|settings)(_|$)"
)
# Every field of the goal form, reviewed: what it holds and why it reaches nothing on the server.
REVIEWED_FORM_FIELDS = {
    "title", "objective", "constraints", "done_criteria", "rollback_note", "work_type", "risk", "approvers",
    "viewers", "approval_timeout_minutes", "on_timeout", "repeated_failure_threshold",
    *(f"budget_{name}" for name in ("minutes", "steps", "tokens", "files_per_step", "files_total", "approvals", "retries")),
    "evidence",  # commands run inside the sandbox, in the worktree
    "protected_paths", "scope_paths",  # globs matched against the diff, never opened
    "repository", "agent_profile",  # ids among the rows staff registered and usable_by() offers
    "agent_model",  # one of the profile's names, checked
    "agent_script",  # steps checked by check_script(): no patch_file, no folder
    "base_branch",  # checked by git check-ref-format and must exist
    "network_hosts",  # public host:port only
}


def test_every_goal_form_field_is_reviewed_and_none_names_a_server_resource(owner):
    fields = set(GoalForm(owner=owner).fields)
    assert fields == REVIEWED_FORM_FIELDS, "review the new or removed goal form fields"
    assert sorted(name for name in fields if SERVER_REACHING.search(name)) == []


def _request_properties(node, schemas: dict, found: set[str], seen: set[str]) -> set[str]:
    """Property names anywhere in a request body's schema, following $refs into the components."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/components/schemas/") and ref not in seen:
            seen.add(ref)
            _request_properties(schemas[ref.rsplit("/", 1)[1]], schemas, found, seen)
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                found |= set(value)
            _request_properties(value, schemas, found, seen)
    elif isinstance(node, list):
        for item in node:
            _request_properties(item, schemas, found, seen)
    return found


def test_no_json_api_key_names_a_server_environment_variable_executable_or_url():
    """Every request body of the API (its generated OpenAPI document), the goal linter's included."""
    document = api.document()
    request_bodies = [
        operation.get("requestBody", {})
        for path in document["paths"].values()
        for operation in path.values()
        if isinstance(operation, dict)
    ]
    keys = _request_properties(request_bodies, document["components"]["schemas"], set(), set())
    assert {"tool", "objective", "budgets", "tokens"} <= keys, "the walk is broken"
    forbidden = re.compile(r"env|executable|url|endpoint|folder|patch_file|repo_path|api_key|agent_settings|base")
    assert sorted(key for key in keys if forbidden.search(key)) == []


def test_egress_marks_the_profiles_hosts_private_ok_and_the_goals_public_only(make_profile):
    profile = make_profile("scripted", egress_hosts=["10.0.0.5:3128", "pypi.org:443"])
    goal = Goal(agent_profile=profile, network_hosts=["pypi.org:443", "github.com:443"])
    assert goal.egress() == [("10.0.0.5:3128", True), ("pypi.org:443", True), ("github.com:443", False)]


def test_a_new_form_chooses_the_only_repository_and_agent_for_the_owner(owner, repository):
    scripted = scripted_profile()
    form = GoalForm(owner=owner)
    assert (form["repository"].value(), form["agent_profile"].value()) == (repository.pk, scripted.pk)


def test_staff_set_up_a_profile_in_the_admin_and_may_remove_its_key(admin_client):
    data = {
        "name": "Local", "adapter": "openai", "enabled": "on", "preset": "", "executable": "", "extra_args": "[]",
        "base_url": "http://llm:8000/v1", "api_key": "sk-typed-once", "api_key_env": "", "models": '["qwen"]',
        "options": '{"temperature": 0.2}', "egress_hosts": '["llm:8000"]',
    }
    response = admin_client.post("/admin/goals/agentprofile/add/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    profile = AgentProfile.objects.get(name="Local")
    assert (profile.api_key, profile.egress_hosts, profile.run_unsandboxed) == ("sk-typed-once", ["llm:8000"], False)
    change = f"/admin/goals/agentprofile/{profile.pk}/change/"
    admin_client.post(change, {**data, "api_key": "", "clear_api_key": "on"})
    assert AgentProfile.objects.get(pk=profile.pk).api_key == ""
    refused = admin_client.post(change, {**data, "api_key": "", "options": '{"command": ["x"]}'})
    assert "Unknown option command" in refused.text


def test_a_goal_whose_owner_lost_the_profile_or_repository_cannot_build_its_agent(goal, owner, make_profile):
    assert goal.build_agent().name == "scripted"
    private = make_profile("scripted", users=[owner])
    goal.agent_profile = private
    assert goal.build_agent().name == "scripted"
    private.users.clear()
    private.users.add(make_user("someone-else"))
    with pytest.raises(AgentError, match="no longer offered to the owner") as error:
        goal.build_agent()
    assert error.value.permanent
    goal.agent_profile = AgentProfile.objects.get(name="Scripted")
    goal.repository.users.clear()
    with pytest.raises(AgentError, match="repository .* is no longer offered"):
        goal.build_agent()


@pytest.mark.parametrize(
    "fields, first",
    [
        pytest.param({"preset": "codex", "base_url": "http://127.0.0.1:8080/v1", "api_key": "k"}, ("127.0.0.1:8080", True), id="codex-local"),
        pytest.param({"preset": "codex", "base_url": "https://llm.example.com/v1"}, ("llm.example.com:443", True), id="codex-https"),
        pytest.param({"preset": "codex", "api_key": "k"}, ("api.openai.com:443", True), id="codex-key-only-is-openais"),
        pytest.param({"preset": "codex", "base_url": "http://[::1]:9000/v1"}, ("[::1]:9000", True), id="codex-ipv6"),
        pytest.param({"preset": "codex"}, ("pypi.org:443", True), id="codex-without-a-provider"),
        pytest.param({"preset": "aider"}, ("pypi.org:443", True), id="no-provider-preset"),
    ],
)
def test_the_agent_may_reach_its_profiles_model_api(make_profile, fields, first):
    profile = make_profile("command", egress_hosts=["pypi.org:443"], **fields)
    egress = Goal(agent_profile=profile).egress()
    assert egress[0] == first
    assert ("pypi.org:443", True) in egress and len(egress) == len(set(egress))


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        pytest.param({"api_key": "sk-\x00"}, "api_key", "Null characters are not allowed", id="a-nul-in-the-key"),
        pytest.param({"users": "9" * 30}, "users", "is not one of the available choices", id="an-id-past-64-bits"),
        pytest.param({"options": "[" * 5000 + "]" * 5000}, "options", "nested deeper", id="options-nested-too-deep"),
        pytest.param({"models": '["\\u0000"]'}, "models", "NUL characters", id="a-nul-in-the-json"),
    ],
)
def test_the_profile_form_refuses_hostile_input_beside_the_field(admin_client, change, field, message):
    data = {
        "name": "Kept name", "adapter": "scripted", "enabled": "on", "extra_args": "[]", "models": "[]",
        "options": "{}", "egress_hosts": "[]", **change,
    }  # fmt: skip
    response = admin_client.post("/admin/goals/agentprofile/add/", data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors[field]), errors
    assert 'value="Kept name"' in response.text
    assert not AgentProfile.objects.filter(name="Kept name").exists()
