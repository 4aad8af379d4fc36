from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput, JSONString

from config.bodies import Unreadable, read_json
from goals import lint
from goals.agents import AgentError
from goals.agents.scripted import ScriptedAgent
from goals.models import (
    AGENT_CHOICES,
    PRESET_CHOICES,
    RISK_CHOICES,
    WORK_TYPE_CHOICES,
    AgentProfile,
    Goal,
    Repository,
    check_host_port,
    check_script,
)
from goals.workspace import RepositoryError, check_repository

MAX_ROWS = 50
MAX_ROW_LENGTH = 500
MAX_BUDGETS = {
    "minutes": 60 * 24 * 30,
    "steps": 10_000,
    "tokens": 10_000_000_000,
    "files_per_step": 10_000,
    "files_total": 100_000,
    "approvals": 10_000,
    "retries": 1_000,
}
WORK_TYPE_LABELS = dict(WORK_TYPE_CHOICES)


class JsonInput(forms.JSONField):
    """Django's JSONField for typed JSON, read by config.bodies: nesting deep enough to exhaust Python's recursion,
    NaN, NUL characters and lone surrogates are a field error rather than a server error."""

    default_error_messages = {"invalid": "Enter a valid JSON. %(reason)s"}

    def to_python(self, value):
        if self.disabled or value in self.empty_values or not isinstance(value, str):
            return super().to_python(value)
        try:
            converted = read_json(value)
        except Unreadable as error:
            raise ValidationError(self.error_messages["invalid"], code="invalid", params={"reason": error}) from error
        return JSONString(converted) if isinstance(converted, str) else converted

    def bound_data(self, data, initial):
        if self.disabled or data is None:
            return super().bound_data(data, initial)
        try:
            return read_json(data)
        except Unreadable:
            return InvalidJSONInput(data)  # shown again as typed


class ChoiceOfIds(forms.ModelMultipleChoiceField):
    """Django's ModelMultipleChoiceField, refusing an id outside a 64-bit column as an unknown choice before it
    reaches the database (SQLite raises OverflowError on `pk__in` with one)."""

    def clean(self, value):
        for item in value if isinstance(value, list | tuple) else ():
            try:
                number = int(item)
            except (ValueError, TypeError):
                continue  # Django's own check names it
            if not -(2**63) <= number < 2**63:
                refused = self.error_messages["invalid_choice"]
                raise ValidationError(refused, code="invalid_choice", params={"value": item})
        return super().clean(value)


class RowsWidget(forms.Widget):
    """Many inputs sharing one name, one per row; the template draws them."""

    def value_from_datadict(self, data, files, name):
        if hasattr(data, "getlist"):
            return data.getlist(name)
        return data.get(name, [])


class StringListField(forms.Field):
    """A list of short strings edited as add/remove rows; blank rows are dropped."""

    widget = RowsWidget

    def __init__(self, *, noun: str, **kwargs):
        self.noun = noun
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_python(self, value) -> list[str]:
        if value in (None, ""):
            return []
        if isinstance(value, str):
            value = [value]
        rows = [str(row).strip() for row in value]
        rows = [row for row in rows if row]
        if len(rows) > MAX_ROWS:
            raise ValidationError(f"At most {MAX_ROWS} {self.noun}s.")
        for number, row in enumerate(rows, start=1):
            if len(row) > MAX_ROW_LENGTH:
                noun = self.noun.capitalize()
                raise ValidationError(
                    f"{noun} {number} is {len(row)} characters long: keep it under {MAX_ROW_LENGTH}."
                )
        return rows

    def prepare_value(self, value):
        return value or []


class EvidenceWidget(forms.Widget):
    """Evidence rows: a kind, the command or description, and the expected exit code."""

    def value_from_datadict(self, data, files, name):
        if not hasattr(data, "getlist"):
            return data.get(name, [])
        kinds = data.getlist(f"{name}_kind")
        texts = data.getlist(f"{name}_text")
        exits = data.getlist(f"{name}_exit")
        rows = []
        for index, kind in enumerate(kinds):
            rows.append(
                {
                    "kind": kind,
                    "text": texts[index] if index < len(texts) else "",
                    "exit": exits[index] if index < len(exits) else "",
                }
            )
        return rows


class EvidenceField(forms.Field):
    widget = EvidenceWidget

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_python(self, value) -> list[dict]:
        checks, errors = parse_evidence_rows(value)
        if errors:
            raise ValidationError(errors)
        return checks

    def prepare_value(self, value):
        """Rows for the template, whether they came from the model (checks) or from a post (raw rows)."""
        rows = []
        for row in value or []:
            if "text" in row:
                rows.append(row)
            elif row.get("kind") == "manual":
                rows.append({"kind": "manual", "text": row.get("description", ""), "exit": ""})
            else:
                rows.append(
                    {"kind": "command", "text": row.get("command", ""), "exit": row.get("expect_exit", 0)}
                )
        return rows


def parse_evidence_rows(rows) -> tuple[list[dict], list[str]]:
    """Checks from posted rows, and a message for each row that is wrong; blank rows are dropped."""
    checks: list[dict] = []
    errors: list[str] = []
    for number, row in enumerate(rows or [], start=1):
        kind = (row.get("kind") or "command").strip()
        text = (row.get("text") or "").strip()
        raw_exit = str(row.get("exit", "")).strip()
        if not text:
            continue
        if kind not in ("command", "manual"):
            errors.append(f"Check {number}: choose a command or a manual check.")
        elif len(text) > MAX_ROW_LENGTH:
            errors.append(f"Check {number} is {len(text)} characters long: keep it under {MAX_ROW_LENGTH}.")
        elif kind == "manual":
            checks.append({"kind": "manual", "command": "", "expect_exit": 0, "description": text})
        elif not raw_exit.isdigit() or not 0 <= int(raw_exit) <= 255:
            if raw_exit:
                errors.append(f"Check {number}: the expected exit code must be a whole number from 0 to 255.")
            else:
                checks.append({"kind": "command", "command": text, "expect_exit": 0, "description": ""})
        else:
            checks.append(
                {"kind": "command", "command": text, "expect_exit": int(raw_exit), "description": ""}
            )
    if len(checks) > MAX_ROWS:
        errors.append(f"At most {MAX_ROWS} checks.")
    return checks, errors


def contract_from_data(data) -> lint.Contract:
    """A best-effort contract from a half-typed form, for the live lint checklist; never raises."""

    def rows(name: str) -> list[str]:
        return [row.strip() for row in data.getlist(name) if row.strip()]

    def budget(name: str) -> int | None:
        raw = data.get(f"budget_{name}", "").strip()
        # ASCII digits only ("²" is a digit to isdigit(), not to int()), and few enough for int() to take.
        return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None

    checks, _ = parse_evidence_rows(EvidenceWidget().value_from_datadict(data, None, "evidence"))
    work_type = data.get("work_type", "other")
    if work_type not in lint.WORK_TYPE_RISK:
        work_type = "other"
    risk = data.get("risk", "")
    return lint.Contract(
        objective=data.get("objective", "").strip(),
        constraints=tuple(rows("constraints")),
        evidence=tuple(lint.EvidenceCheck(**check) for check in checks),
        done_criteria=data.get("done_criteria", "").strip(),
        work_type=work_type,
        risk=risk if risk in lint.RISK_ORDER else "",
        rollback_note=data.get("rollback_note", "").strip(),
        budgets={name: budget(name) for name in lint.BUDGET_NAMES},
    )


def budget_field(name: str, label: str, help_text: str = "") -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        required=False,
        initial=lint.DEFAULT_BUDGETS[name],
        min_value=0,
        max_value=MAX_BUDGETS[name],
        help_text=help_text,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "min": 0}),
    )


class GoalForm(forms.ModelForm):
    constraints = StringListField(noun="constraint")
    evidence = EvidenceField()
    protected_paths = StringListField(noun="protected path")
    scope_paths = StringListField(noun="working area path")
    risk = forms.ChoiceField(
        choices=[("", "As the work type says")] + RISK_CHOICES,
        required=False,
        help_text="You may raise the risk, never lower it below the work type's.",
    )
    budget_minutes = budget_field("minutes", "Wall-clock minutes")
    budget_steps = budget_field("steps", "Steps")
    budget_tokens = budget_field("tokens", "Tokens")
    budget_files_per_step = budget_field(
        "files_per_step", "Files per step", "More files in one step asks for a plan."
    )
    budget_files_total = budget_field("files_total", "Files in total")
    budget_approvals = budget_field("approvals", "Approvals")
    budget_retries = budget_field("retries", "Retries of the same failure")
    network_hosts = StringListField(noun="network host")
    repository = forms.ModelChoiceField(
        queryset=Repository.objects.none(),
        empty_label="Choose a repository",
        error_messages={
            "invalid_choice": "Choose one of the repositories offered here: staff register new ones.",
            "required": "Choose the repository the goal works on.",
        },
    )
    agent_profile = forms.ModelChoiceField(
        queryset=AgentProfile.objects.none(),
        label="Agent",
        empty_label="Choose an agent",
        error_messages={
            "invalid_choice": "Choose one of the agents offered here: staff set up new ones.",
            "required": "Choose the agent that works on the goal.",
        },
    )
    agent_model = forms.ChoiceField(label="Model", required=False)
    agent_script = JsonInput(
        label="Script",
        required=False,
        initial=list,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text='Scripted agents only: a JSON list of steps, e.g. [{"summary": "…", "write": {"a.txt": "…"}}].',
    )

    class Meta:
        model = Goal
        fields = [
            "title",
            "objective",
            "constraints",
            "evidence",
            "done_criteria",
            "rollback_note",
            "work_type",
            "risk",
            "budget_minutes",
            "budget_steps",
            "budget_tokens",
            "budget_files_per_step",
            "budget_files_total",
            "budget_approvals",
            "budget_retries",
            "repeated_failure_threshold",
            "protected_paths",
            "scope_paths",
            "approval_timeout_minutes",
            "on_timeout",
            "repository",
            "base_branch",
            "agent_profile",
            "agent_model",
            "agent_script",
            "network_hosts",
            "approvers",
            "viewers",
        ]
        field_classes = {"approvers": ChoiceOfIds, "viewers": ChoiceOfIds}
        widgets = {
            "objective": forms.Textarea(attrs={"rows": 3}),
            "done_criteria": forms.Textarea(attrs={"rows": 2}),
            "rollback_note": forms.Textarea(attrs={"rows": 2}),
            "approvers": forms.CheckboxSelectMultiple,
            "viewers": forms.CheckboxSelectMultiple,
            "base_branch": forms.TextInput(attrs={"spellcheck": "false", "autocapitalize": "off"}),
        }
        labels = {
            "objective": "Objective",
            "done_criteria": "Done when",
            "rollback_note": "Rollback note",
            "repeated_failure_threshold": "Ask a human after the same failure (times)",
        }

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner
        self.fields["approvers"].queryset = (
            get_user_model().objects.filter(is_active=True).exclude(pk=owner.pk).order_by("username")
        )
        self.fields[
            "approvers"
        ].help_text = "Two or more approvers put high-risk steps under the two-person rule."
        self.fields["viewers"].queryset = self.fields["approvers"].queryset
        self.fields["repository"].queryset = Repository.objects.usable_by(owner)
        self.fields["repository"].label_from_instance = _repository_label
        profiles = AgentProfile.objects.usable_by(owner)
        self.fields["agent_profile"].queryset = profiles
        self.fields["agent_profile"].label_from_instance = _profile_label
        self.fields["agent_model"].choices = [("", "The agent's default")] + [
            (profile.name, [(model, model) for model in profile.models]) for profile in profiles if profile.models
        ]
        if self.instance.pk is None and not self.is_bound:
            repositories = self.fields["repository"].queryset
            if len(repositories[:2]) == 1:  # the only choice: chosen already
                self.initial.setdefault("repository", repositories[0].pk)
            runnable = default_profile(profiles)
            if runnable is not None:
                self.initial.setdefault("agent_profile", runnable.pk)
        self.fields["network_hosts"].help_text = (
            "Public hosts the agent and the checks may reach, as host:port (e.g. pypi.org:443). "
            "No IP addresses, no localhost or private names."
        )
        self.fields["viewers"].help_text = "Viewers see the goal and its requests; they decide nothing."
        self.fields["repeated_failure_threshold"].widget.attrs.update({"min": 1, "inputmode": "numeric"})
        self.fields["repeated_failure_threshold"].validators.append(_at_least_one)
        self.fields["approval_timeout_minutes"].widget.attrs.update({"min": 1, "inputmode": "numeric"})
        self.fields["approval_timeout_minutes"].validators.append(_at_least_one)
        if self.instance.pk and self.instance.risk == self.instance.minimum_risk:
            self.initial["risk"] = ""
        if self.instance.pk is None and not self.is_bound:
            self.initial.setdefault("risk", "")

    def clean_title(self) -> str:
        title = self.cleaned_data["title"].strip()
        if not title:
            raise ValidationError("Give the goal a short title.")
        return title

    def clean(self):
        cleaned = super().clean()
        work_type = cleaned.get("work_type")
        if work_type:
            floor = lint.minimum_risk(work_type)
            chosen = cleaned.get("risk") or floor
            if lint.RISK_ORDER.index(chosen) < lint.RISK_ORDER.index(floor):
                self.add_error(
                    "risk",
                    f"{WORK_TYPE_LABELS[work_type]} work is {floor} risk at least: raise it if you like, "
                    "never lower it.",
                )
            cleaned["risk"] = chosen
        self._clean_agent(cleaned)
        repository = cleaned.get("repository")
        branch = (cleaned.get("base_branch") or "").strip()
        if repository and not repository.is_url and "base_branch" not in self.errors:
            try:
                check_repository(repository.source, branch)
                cleaned["base_branch"] = branch
            except RepositoryError as error:
                self.add_error("repository" if error.field == "repo_path" else error.field, str(error))
        both = set(cleaned.get("approvers") or ()) & set(cleaned.get("viewers") or ())
        if both:
            names = ", ".join(sorted(user.get_username() for user in both))
            self.add_error("viewers", f"Approvers already see the goal: {names} cannot be a viewer too.")
        return cleaned

    def clean_network_hosts(self) -> list[str]:
        hosts = []
        for entry in self.cleaned_data["network_hosts"]:
            try:
                hosts.append(check_host_port(entry, public_only=True))
            except ValueError as error:
                raise ValidationError(str(error)) from error
        return hosts

    def _clean_agent(self, cleaned: dict) -> None:
        """The model must be one of the chosen agent's; a script only for a scripted agent that takes one."""
        profile = cleaned.get("agent_profile")
        model = cleaned.get("agent_model") or ""
        script = cleaned.get("agent_script")
        if script is None:
            cleaned["agent_script"] = script = []
        if profile is None:
            return
        if model and model not in profile.models:
            offered = ", ".join(profile.models) or "none: leave it on the default"
            self.add_error("agent_model", f"{profile.name} offers these models: {offered}.")
        cannot_run = profile.cannot_run_here(goal_script=bool(script))
        if cannot_run and profile.adapter == "scripted":  # fails on the first step: say so now, not after Start
            self.add_error("agent_profile", cannot_run)
        if script and (profile.adapter != "scripted" or "folder" in profile.options):
            self.add_error("agent_script", f"{profile.name} takes no script from the goal: leave it empty.")
        elif script:
            try:
                ScriptedAgent({"steps": check_script(script)})
            except AgentError as error:
                self.add_error("agent_script", error.message)

    def save(self, commit: bool = True) -> Goal:
        goal = super().save(commit=False)
        goal.risk = self.cleaned_data["risk"]
        if goal.owner_id is None:
            goal.owner = self.owner
        if commit:
            goal.save()
            self.save_m2m()
        return goal


def default_profile(profiles) -> AgentProfile | None:
    """The agent a new goal starts with: the first offered profile that can run here, never one that fails on
    its first step (a scripted profile with nothing to replay)."""
    return next((profile for profile in profiles if not profile.cannot_run_here()), None)


def _profile_label(profile: AgentProfile) -> str:
    kind = dict(AGENT_CHOICES).get(profile.adapter, profile.adapter)
    if profile.adapter == "command" and profile.preset:
        kind = dict(PRESET_CHOICES).get(profile.preset, kind)
    cannot_run = profile.cannot_run_here(goal_script=profile.adapter == "scripted")
    waiting = "" if profile.enabled else " — switched off by staff"
    return f"{profile.name} ({kind}){waiting}{' — cannot run here' if cannot_run else ''}"


def _repository_label(repository: Repository) -> str:
    waiting = "" if repository.enabled else " — not yet reviewed by staff"
    return f"{repository.name} ({repository.source}){waiting}"


def _at_least_one(value: int) -> None:
    if value is not None and value < 1:
        raise ValidationError("At least 1.")
