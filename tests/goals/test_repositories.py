import os
import shutil
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection

from goals.forms import GoalForm
from goals.models import Repository, check_local_source, demo_root
from tests.factories import form_data, run_git, subprocess_database_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(owner):
    group = Group.objects.create(name="team")
    owner.groups.add(group)
    return group


def clean_source(source: str, branch: str = "main") -> str:
    repository = Repository(name="r", source=source, default_branch=branch)
    repository.full_clean()
    return repository.source


# --- what may be registered ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("https://github.com/acme/shop.git", id="https"),
        pytest.param("ssh://git@github.com/acme/shop.git", id="ssh"),
        pytest.param("git@github.com:acme/shop.git", id="scp-like"),
    ],
)
def test_urls_of_the_three_kinds_are_registered_as_typed(source):
    assert clean_source(source) == source


@pytest.mark.parametrize(
    "source, message",
    [
        pytest.param("file:///srv/repo", "Only https:// and ssh://", id="file-url"),
        pytest.param("http://example.com/repo.git", "Only https:// and ssh://", id="plain-http"),
        pytest.param("git://example.com/repo.git", "Only https:// and ssh://", id="git-protocol"),
        pytest.param("ext::sh -c touch% /tmp/pwned", "Give an absolute path", id="ext-transport"),
        pytest.param("fd::3", "Give an absolute path", id="fd-transport"),
        pytest.param("-uhttps://example.com/x", "Give an absolute path", id="an-option"),
        pytest.param("ssh://-oProxyCommand=x/repo", "Only https:// and ssh://", id="ssh-host-as-option"),
        pytest.param("ssh://-oProxyCommand=x@host/repo", "Only https:// and ssh://", id="ssh-user-as-option"),
        pytest.param("git@host:-upload-pack", "Give an absolute path", id="scp-path-as-option"),
        pytest.param("relative/path", "Give an absolute path", id="a-relative-path"),
        pytest.param("https://bot:ghp_secret@github.com/acme/shop.git", "Leave the password or token out", id="a-token-in-the-url"),
        pytest.param("/nonexistent/goalpost-repo", "No folder at", id="no-such-folder"),
    ],
)
def test_sources_that_are_not_a_repository_url_or_path_are_refused(source, message):
    with pytest.raises(ValidationError, match=message):
        clean_source(source)


def test_a_folder_that_is_not_a_work_tree_is_refused(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(ValidationError, match="is not a git repository"):
        clean_source(str(tmp_path / "plain"))
    run_git(tmp_path, "init", "-q", "--bare", str(tmp_path / "bare.git"))
    with pytest.raises(ValidationError, match="is a bare repository"):
        clean_source(str(tmp_path / "bare.git"))


@pytest.mark.parametrize("branch", ["a..b", "-delete", ""])
def test_a_url_repository_needs_a_valid_default_branch_name(branch):
    with pytest.raises(ValidationError) as error:
        clean_source("https://github.com/acme/shop.git", branch=branch)
    assert "default_branch" in error.value.message_dict


def test_a_missing_branch_is_a_default_branch_error(git_repo):
    with pytest.raises(ValidationError) as error:
        clean_source(str(git_repo), branch="release")
    assert "default_branch" in error.value.message_dict


def test_a_subfolder_is_stored_as_its_repositorys_top_level(git_repo):
    (git_repo / "src").mkdir()
    assert clean_source(str(git_repo / "src")) == str(git_repo)


def goalpost_paths(tmp_path) -> list:
    """Goalpost's checkout, a folder in it, its var/, and a symlink from outside that lands in the checkout."""
    link = tmp_path / "innocent"
    os.symlink(settings.BASE_DIR, link)
    var_link = tmp_path / "innocent-var"
    settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
    os.symlink(settings.VAR_DIR, var_link)
    return [settings.BASE_DIR, settings.BASE_DIR / "goals", settings.VAR_DIR, link, var_link, f"{link}/goals"]


def test_goalposts_own_checkout_and_var_are_refused_even_through_a_symlink(tmp_path):
    for path in goalpost_paths(tmp_path):
        with pytest.raises(ValidationError, match="inside Goalpost's own files"):
            clean_source(str(path))


def test_only_the_demos_own_repositories_may_live_in_var(git_repo):
    demo = demo_root() / f"test-{os.getpid()}"
    shutil.copytree(git_repo, demo, symlinks=True)
    try:
        assert check_local_source(str(demo), "main") == str(demo)
        with pytest.raises(ValidationError, match="inside Goalpost's own files"):
            check_local_source(str(demo_root()), "main")
    finally:
        shutil.rmtree(demo)


# --- who may use a repository -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "enabled, listed, expected",
    [
        pytest.param(True, "user", {"owner", "staff"}, id="enabled-listed-user"),
        pytest.param(True, "group", {"owner", "staff"}, id="enabled-through-a-group"),
        pytest.param(True, "", {"staff"}, id="enabled-nobody-listed-is-staff-only"),
        pytest.param(False, "user", {"owner"}, id="disabled-only-its-listed-users"),
        pytest.param(False, "group", set(), id="disabled-not-through-a-group"),
        pytest.param(False, "", set(), id="disabled-nobody-listed-is-nobody"),
    ],
)
def test_usable_by(make_repository, git_repo, owner, outsider, staff, team, enabled, listed, expected):
    repository = make_repository(
        git_repo, users=[owner] if listed == "user" else [], groups=[team] if listed == "group" else [], enabled=enabled
    )
    users = {"owner": owner, "outsider": outsider, "staff": staff}
    assert {name for name, user in users.items() if repository in Repository.objects.usable_by(user)} == expected


def test_the_form_offers_only_the_repositories_the_owner_may_use(make_repository, tmp_path, owner, outsider):
    mine = make_repository(tmp_path / "mine", users=[owner])
    migrated = make_repository(tmp_path / "migrated", users=[owner], enabled=False)
    make_repository(tmp_path / "theirs", users=[outsider])
    make_repository(tmp_path / "theirs-migrated", users=[outsider], enabled=False)
    assert list(GoalForm(owner=owner).fields["repository"].queryset) == [migrated, mine]


def test_a_disabled_migrated_repository_works_for_its_owner_and_is_offered_to_nobody_else(
    client, owner, outsider, git_repo, make_repository
):
    migrated = make_repository(git_repo, users=[owner], enabled=False)
    client.force_login(owner)
    assert client.post("/goals/new/", form_data(migrated)).status_code == 302
    client.force_login(outsider)
    offered = client.get("/goals/new/").context["form"].fields["repository"].queryset
    assert migrated not in offered
    response = client.post("/goals/new/", {**form_data(migrated), "title": "Mine now"})
    assert response.status_code == 422
    assert "repository" in response.context["form"].errors
    assert 'value="Mine now"' in response.text


def test_a_url_repository_exposes_where_the_worker_mirrors_it(make_repository):
    repository = make_repository("https://github.com/acme/shop.git")
    assert repository.is_url
    assert repository.mirror_dir == settings.VAR_DIR / "repos" / f"{repository.pk}-https_github.com_acme_shop.git.git"
    assert not make_repository("/srv/shop").is_url


# --- the forge token, encrypted at rest -----------------------------------------------------------------------


def test_the_forge_token_is_encrypted_in_the_database(make_repository):
    repository = make_repository("https://github.com/acme/shop.git", forge="github", forge_token="ghp_plaintext123")
    with connection.cursor() as cursor:
        cursor.execute("SELECT forge_token FROM goals_repository WHERE id = %s", [repository.pk])
        (stored,) = cursor.fetchone()
    assert stored and "ghp_plaintext123" not in stored
    assert Repository.objects.get(pk=repository.pk).forge_token == "ghp_plaintext123"


def test_the_admin_never_shows_the_token_and_a_blank_entry_keeps_it(admin_client, make_repository):
    repository = make_repository("https://github.com/acme/shop.git", forge_token="ghp_plaintext123")
    page = admin_client.get(f"/admin/goals/repository/{repository.pk}/change/").text
    assert "ghp_plaintext123" not in page and "A secret is stored" in page
    data = {
        "name": repository.name, "source": repository.source, "default_branch": "main", "enabled": "on",
        "forge": "github", "forge_url": "", "forge_project": "acme/shop", "forge_token": "",
    }
    response = admin_client.post(f"/admin/goals/repository/{repository.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Repository.objects.get(pk=repository.pk).forge_token == "ghp_plaintext123"
    admin_client.post(f"/admin/goals/repository/{repository.pk}/change/", {**data, "forge_token": "ghp_new"})
    assert Repository.objects.get(pk=repository.pk).forge_token == "ghp_new"


# --- manage.py repos ------------------------------------------------------------------------------------------


def repos(*args) -> str:
    out = StringIO()
    call_command("repos", *args, stdout=out)
    return out.getvalue()


def test_repos_add_registers_a_work_tree_for_the_named_users_and_groups(git_repo, owner, team):
    assert "Registered shop" in repos("add", str(git_repo), "--name", "shop", "--user", "owner", "--group", "team")
    repository = Repository.objects.get(name="shop")
    assert repository.source == str(git_repo) and repository.enabled
    assert list(repository.users.all()) == [owner] and list(repository.groups.all()) == [team]
    listing = repos("list")
    assert f"shop\t{git_repo}\tenabled\towner, group:team\t-" in listing


def test_repos_add_names_a_url_after_its_repository_and_may_register_it_disabled(db):
    repos("add", "git@github.com:acme/shop.git", "--disabled", "--branch", "trunk")
    repository = Repository.objects.get()
    assert (repository.name, repository.enabled, repository.default_branch) == ("shop", False, "trunk")
    assert "shop\tgit@github.com:acme/shop.git\tdisabled\tnobody" in repos("list")


@pytest.mark.parametrize(
    "args, message",
    [
        pytest.param(["add", "GOALPOST"], "inside Goalpost's own files", id="goalposts-checkout"),
        pytest.param(["add", "VAR"], "inside Goalpost's own files", id="goalposts-var"),
        pytest.param(["add", "file:///srv/x"], "Only https:// and ssh://", id="file-url"),
        pytest.param(["add", "REPO", "--user", "nobody-here"], "No such user: nobody-here", id="unknown-user"),
        pytest.param(["add", "REPO", "--group", "ghosts"], "No such group: ghosts", id="unknown-group"),
        pytest.param(["add", "REPO", "--branch", "release"], "no branch “release”", id="unknown-branch"),
    ],
)
def test_repos_add_refuses_bad_input_with_a_reason_and_a_non_zero_exit(git_repo, args, message):
    places = {"GOALPOST": str(settings.BASE_DIR), "VAR": str(settings.VAR_DIR), "REPO": str(git_repo)}
    with pytest.raises(CommandError, match=message):
        repos(*[places.get(arg, arg) for arg in args])
    assert not Repository.objects.exists()


def test_repos_add_exits_non_zero_from_the_shell():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "manage.py", "repos", "add", str(settings.BASE_DIR)],
        cwd=settings.BASE_DIR, capture_output=True, text=True, env={**os.environ, "DATABASE_URL": subprocess_database_url()},
    )
    assert result.returncode != 0 and "inside Goalpost's own files" in result.stderr


def test_the_form_names_each_repository_with_its_source_and_says_which_await_review(make_repository, tmp_path, owner):
    make_repository(tmp_path / "shop", users=[owner], name="shop")
    make_repository(tmp_path / "old", users=[owner], name="old", enabled=False)
    labels = [label for _, label in GoalForm(owner=owner).fields["repository"].choices][1:]
    assert labels == [f"old ({tmp_path / 'old'}) — not yet reviewed by staff", f"shop ({tmp_path / 'shop'})"]
