from django import forms
from django.contrib import admin
from django.db import models

from goals.forms import ChoiceOfIds, JsonInput
from goals.models import AgentProfile, Goal, GoalEvent, Repository, WorkerHeartbeat

# Typed JSON is read by config.bodies (nested too deep or holding NUL, it is a field error, not a server error);
# an id past a 64-bit column is an unknown choice, not SQLite's OverflowError.
JSON_INPUT = {models.JSONField: {"form_class": JsonInput}, models.ManyToManyField: {"form_class": ChoiceOfIds}}


class GoalEventInline(admin.TabularInline):
    model = GoalEvent
    extra = 0
    fields = ("created_at", "kind", "message", "actor")
    readonly_fields = fields
    can_delete = False


@admin.register(Goal)
class GoalAdmin(admin.ModelAdmin):
    list_display = ("title", "owner", "repository", "agent_profile", "work_type", "risk", "status", "updated_at")
    list_filter = ("status", "risk", "work_type")
    search_fields = ("title", "objective")
    filter_horizontal = ("approvers",)
    raw_id_fields = ("owner",)
    inlines = [GoalEventInline]
    formfield_overrides = JSON_INPUT


class WriteOnlySecretForm(forms.ModelForm):
    """A secret is typed to replace it and never sent back to the browser: blank keeps the stored one."""

    secret_field = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields[self.secret_field]
        field.widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
        field.required = False
        is_set = bool(self.instance.pk and getattr(self.instance, self.secret_field))
        field.help_text = (
            "A secret is stored (encrypted): type a new one to replace it, leave blank to keep it."
            if is_set
            else "None stored. Stored encrypted; never shown again."
        )

    def clean(self):
        cleaned = super().clean()
        typed = cleaned.get(self.secret_field)
        if cleaned.get(f"clear_{self.secret_field}"):
            cleaned[self.secret_field] = ""
        elif self.has_error(self.secret_field):
            return cleaned  # the field says why (a NUL character, too long): nothing to keep or replace
        elif not typed and self.instance.pk:
            stored = type(self.instance).objects.get(pk=self.instance.pk)
            cleaned[self.secret_field] = getattr(stored, self.secret_field)
        setattr(self.instance, self.secret_field, cleaned.get(self.secret_field) or "")
        return cleaned


class RepositoryForm(WriteOnlySecretForm):
    secret_field = "forge_token"  # noqa: S105 (a field name)
    clear_forge_token = forms.BooleanField(required=False, label="Remove the stored token")
    forge_url = forms.URLField(
        label="Forge API URL", required=False, assume_scheme="https", help_text="e.g. https://api.github.com"
    )

    class Meta:
        model = Repository
        fields = [
            "name", "source", "default_branch", "enabled", "users", "groups",
            "forge", "forge_url", "forge_project", "forge_token",
            "test_paths", "generated_paths", "vendored_paths",
        ]
        widgets = {
            name: forms.Textarea(attrs={"rows": 3, "cols": 60})
            for name in ("test_paths", "generated_paths", "vendored_paths")
        }


class AgentProfileForm(WriteOnlySecretForm):
    secret_field = "api_key"  # noqa: S105 (a field name)
    clear_api_key = forms.BooleanField(required=False, label="Remove the stored key")

    class Meta:
        model = AgentProfile
        fields = [
            "name", "adapter", "enabled", "users", "groups", "preset", "executable", "extra_args",
            "base_url", "api_key", "api_key_env", "models", "options", "egress_hosts", "run_unsandboxed",
        ]


@admin.register(Repository)
class RepositoryAdmin(admin.ModelAdmin):
    form = RepositoryForm
    formfield_overrides = JSON_INPUT
    list_display = ("name", "source", "enabled", "forge", "token_set", "created_at")
    list_filter = ("enabled", "forge")
    search_fields = ("name", "source")
    filter_horizontal = ("users", "groups")

    @admin.display(boolean=True, description="token")
    def token_set(self, repository: Repository) -> bool:
        return bool(repository.forge_token)


@admin.register(AgentProfile)
class AgentProfileAdmin(admin.ModelAdmin):
    form = AgentProfileForm
    formfield_overrides = JSON_INPUT
    list_display = ("name", "adapter", "preset", "enabled", "run_unsandboxed", "key_set", "created_at")
    list_filter = ("enabled", "adapter", "run_unsandboxed")
    search_fields = ("name",)
    filter_horizontal = ("users", "groups")
    fieldsets = [
        (None, {"fields": ("name", "adapter", "enabled", "users", "groups")}),
        ("Command agents", {"fields": ("preset", "executable", "extra_args")}),
        (
            "Model API (OpenAI-compatible agents, Codex, Claude Code)",
            {"fields": ("base_url", "api_key", "clear_api_key", "api_key_env")},
        ),
        ("Models and options", {"fields": ("models", "options", "egress_hosts")}),
        ("Danger", {"fields": ("run_unsandboxed",)}),
    ]

    @admin.display(boolean=True, description="key")
    def key_set(self, profile: AgentProfile) -> bool:
        return bool(profile.api_key or profile.api_key_env)


@admin.register(GoalEvent)
class GoalEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "goal", "kind", "message", "actor")
    list_filter = ("kind",)
    raw_id_fields = ("goal", "actor")


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("hostname", "seen_at")
