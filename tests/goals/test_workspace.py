import pytest

from goals.workspace import RepositoryError, check_repository
from tests.conftest import run_git


def test_a_repository_and_its_branch_pass(git_repo):
    assert check_repository(str(git_repo), "main") == str(git_repo)


def test_another_existing_branch_passes(git_repo):
    run_git(git_repo, "branch", "release")
    assert check_repository(str(git_repo), "release") == str(git_repo)


def test_a_tag_is_not_a_branch(git_repo):
    run_git(git_repo, "tag", "v1")
    with pytest.raises(RepositoryError) as error:
        check_repository(str(git_repo), "v1")
    assert error.value.field == "base_branch"


def test_a_symlink_to_a_repository_resolves(git_repo, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(git_repo)
    assert check_repository(str(link), "main") == str(git_repo.resolve())


def test_a_file_is_not_a_repository(tmp_path):
    path = tmp_path / "file.txt"
    path.write_text("x")
    with pytest.raises(RepositoryError, match="No folder"):
        check_repository(str(path), "main")


def test_branch_option_injection_is_refused(git_repo):
    with pytest.raises(RepositoryError) as error:
        check_repository(str(git_repo), "--output=/tmp/x")
    assert error.value.field == "base_branch"
