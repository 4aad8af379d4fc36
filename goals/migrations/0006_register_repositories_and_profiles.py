# Step 2 of 3: every goal's typed repository path becomes a registered Repository, and its free-form agent
# settings an AgentProfile. Both are created DISABLED and list the goals' owners, so the goals keep working for
# them (and only them) until staff review and enable them. Nothing is dropped here; 0007 drops the old columns.

import json
from pathlib import PurePosixPath

from django.db import migrations

# The variable the openai adapter read when none was named; any other name an owner typed is not carried over:
# it is how a user made the worker send DATABASE_URL or SECRET_KEY as a Bearer token.
DEFAULT_KEY_VARIABLE = "OPENAI_API_KEY"
SERVER_PATH_KEYS = {"patch_file", "folder"}


def unique_name(base: str, taken: set[str]) -> str:
    base = (base or "repository")[:90]
    name, number = base, 2
    while name in taken:
        name, number = f"{base}-{number}", number + 1
    taken.add(name)
    return name


def split_agent_settings(agent: str, settings: dict) -> tuple[dict, str, list]:
    """(the profile's fields, the goal's model, the goal's script) from a goal's old agent and settings."""
    settings = settings if isinstance(settings, dict) else {}
    if agent == "scripted":
        steps = settings.get("steps") if isinstance(settings.get("steps"), list) else []
        if "folder" in settings:
            return {"options": {"folder": settings["folder"]}}, "", []
        if any(isinstance(entry, dict) and SERVER_PATH_KEYS & set(entry) for entry in steps):
            return {"options": {"steps": steps}}, "", []  # reads server files: only a profile may
        return {}, "", steps
    if agent == "command":
        preset = settings.get("preset") or ("custom" if "command" in settings else "")
        fields = {
            "preset": preset,
            "executable": settings.get("executable") or "",
            "extra_args": settings.get("args") if isinstance(settings.get("args"), list) else [],
            "options": {key: settings[key] for key in ("command", "timeout_s") if key in settings},
        }
        return fields, "", []
    if agent == "openai":
        model = settings.get("model") if isinstance(settings.get("model"), str) else ""
        variable = settings.get("api_key_env", DEFAULT_KEY_VARIABLE)
        fields = {
            "base_url": settings.get("base_url") or "",
            "models": [model] if model else [],
            "api_key_env": DEFAULT_KEY_VARIABLE if variable == DEFAULT_KEY_VARIABLE else "",
            "options": {key: settings[key] for key in ("temperature", "max_tokens", "timeout_s") if key in settings},
        }
        return fields, model, []
    return {}, "", []


def register(apps, schema_editor):
    Goal = apps.get_model("goals", "Goal")
    Repository = apps.get_model("goals", "Repository")
    AgentProfile = apps.get_model("goals", "AgentProfile")
    repo_names = set(Repository.objects.values_list("name", flat=True))
    profile_names = set(AgentProfile.objects.values_list("name", flat=True))
    repositories: dict[str, object] = {}
    profiles: dict[tuple[str, str], object] = {}
    fields = ("pk", "owner_id", "repo_path", "base_branch", "agent", "agent_settings")
    for goal in Goal.objects.order_by("pk").only(*fields):
        path = goal.repo_path
        repository = repositories.get(path)
        if repository is None:
            repository = Repository.objects.filter(source=path).first() or Repository.objects.create(
                name=unique_name(PurePosixPath(path.rstrip("/")).name, repo_names),
                source=path,
                default_branch=goal.base_branch or "main",
                enabled=False,
            )
            repositories[path] = repository
        repository.users.add(goal.owner_id)

        profile_fields, model, script = split_agent_settings(goal.agent, goal.agent_settings)
        key = (goal.agent, json.dumps(profile_fields, sort_keys=True))
        profile = profiles.get(key)
        if profile is None:
            label = " ".join(filter(None, ["Migrated", goal.agent, profile_fields.get("preset", "")]))
            if goal.agent == "openai" and not profile_fields.get("api_key_env"):
                label += " (key variable dropped)"
            profile = AgentProfile.objects.create(
                name=unique_name(label, profile_names), adapter=goal.agent, enabled=False, **profile_fields
            )
            profiles[key] = profile
        profile.users.add(goal.owner_id)
        Goal.objects.filter(pk=goal.pk).update(
            repository=repository, agent_profile=profile, agent_model=model, agent_script=script
        )


def unregister(apps, schema_editor):
    """Back to typed paths and settings (the key of an encrypted or dropped variable does not come back)."""
    Goal = apps.get_model("goals", "Goal")
    for goal in Goal.objects.select_related("repository", "agent_profile"):
        profile = goal.agent_profile
        settings: dict = {}
        if profile is not None and profile.adapter == "scripted":
            settings = dict(profile.options) if profile.options else {"steps": list(goal.agent_script)}
        elif profile is not None and profile.adapter == "command":
            settings = {"preset": profile.preset, **profile.options}
            if profile.executable:
                settings["executable"] = profile.executable
            if profile.extra_args:
                settings["args"] = profile.extra_args
        elif profile is not None and profile.adapter == "openai":
            settings = {"base_url": profile.base_url, "model": goal.agent_model, **profile.options}
            if profile.api_key_env:
                settings["api_key_env"] = profile.api_key_env
        Goal.objects.filter(pk=goal.pk).update(
            repo_path=goal.repository.source if goal.repository else "",
            agent=profile.adapter if profile else "scripted",
            agent_settings=settings,
        )


class Migration(migrations.Migration):
    dependencies = [("goals", "0005_repositories_and_profiles")]

    operations = [migrations.RunPython(register, unregister)]
