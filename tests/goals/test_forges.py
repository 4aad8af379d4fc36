"""Opening a pull request on GitHub, GitLab and Gitea, against a local forge speaking each one's REST API."""

import logging
import socket

import pytest

from goals.forges import Forge, ForgeError
from tests.support.fakes.forge import FakeForge

KINDS = ["github", "gitlab", "gitea"]
TOKEN = "forge-secret-token-123"
BRANCH = "goalpost/7"


@pytest.fixture(params=KINDS)
def forge(request):
    server = FakeForge(request.param, token=TOKEN).start()
    yield server
    server.stop()


def client_for(server: FakeForge, token: str = TOKEN) -> Forge:
    return Forge(server.kind, server.api_url, server.project, token)


def open_one(server: FakeForge, token: str = TOKEN):
    return client_for(server, token).open_pull_request(
        head=BRANCH, base="main", title="Export invoices as CSV", body="## Steps\n1. Add the export"
    )


def test_it_opens_a_pull_request_with_the_forges_own_endpoint_header_and_fields(forge):
    pull = open_one(forge)

    assert (pull.number, pull.existing) == (1, False)
    assert pull.url.endswith("/shop/invoices/-/merge_requests/1" if forge.kind == "gitlab" else "/1")
    created = [r for r in forge.requests if r["method"] == "POST"]
    assert len(created) == 1
    sent = created[0]
    if forge.kind == "github":
        assert sent["path"] == "/repos/shop/invoices/pulls"
        assert sent["headers"]["Authorization"] == f"Bearer {TOKEN}"
        assert sent["headers"]["Accept"] == "application/vnd.github+json"
        assert sent["headers"]["X-GitHub-Api-Version"] == "2022-11-28"
        assert sent["json"] == {"title": "Export invoices as CSV", "head": BRANCH, "base": "main",
                                "body": "## Steps\n1. Add the export"}  # fmt: skip
    elif forge.kind == "gitlab":
        assert sent["path"] == "/api/v4/projects/shop%2Finvoices/merge_requests"
        assert sent["headers"]["PRIVATE-TOKEN"] == TOKEN
        assert sent["json"] == {"source_branch": BRANCH, "target_branch": "main", "title": "Export invoices as CSV",
                                "description": "## Steps\n1. Add the export"}  # fmt: skip
    else:
        assert sent["path"] == "/api/v1/repos/shop/invoices/pulls"
        assert sent["headers"]["Authorization"] == f"token {TOKEN}"
        assert sent["json"]["head"] == BRANCH and sent["json"]["body"].startswith("## Steps")


def test_an_open_pull_request_for_the_branch_is_linked_not_duplicated(forge):
    first = open_one(forge)
    second = open_one(forge)

    assert second.existing and (second.url, second.number) == (first.url, first.number)
    assert len(forge.pulls) == 1
    assert [r["method"] for r in forge.requests].count("POST") == 1


def test_already_exists_from_the_forge_links_the_open_one(forge):
    open_one(forge)
    forge.list_misses = 1  # the list lags: the create is refused as a duplicate (GitHub 422, GitLab/Gitea 409)

    pull = open_one(forge)

    assert pull.existing and pull.number == 1
    duplicate = [r for r in forge.requests if r["method"] == "POST"][-1]
    assert duplicate["json"]  # the second create was sent, and refused
    assert len(forge.pulls) == 1


def test_a_wrong_token_is_a_clear_message_without_the_token(forge, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ForgeError) as refused:
        open_one(forge, token="expired-token-456")

    assert "401" in str(refused.value) and "token" in str(refused.value)
    assert "expired-token-456" not in str(refused.value)
    assert "expired-token-456" not in caplog.text


def test_a_forge_that_is_down_is_a_clear_message(forge):
    forge.stop()

    with pytest.raises(ForgeError, match="Could not reach the forge at 127.0.0.1"):
        open_one(forge)


def test_a_wrong_project_says_so(forge):
    client = Forge(forge.kind, forge.api_url, "shop/other", TOKEN)

    with pytest.raises(ForgeError, match="no project “shop/other”"):
        client.open_pull_request(head=BRANCH, base="main", title="t", body="b")


def test_a_forge_that_never_answers_times_out(monkeypatch):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never answers
    monkeypatch.setattr("goals.forges.TIMEOUT_S", 0.5)
    try:
        client = Forge("gitea", f"http://127.0.0.1:{listener.getsockname()[1]}/api/v1", "shop/invoices", TOKEN)
        with pytest.raises(ForgeError, match="did not answer"):
            client.open_pull_request(head=BRANCH, base="main", title="t", body="b")
    finally:
        listener.close()


@pytest.mark.parametrize(
    ("kind", "url", "project", "token", "message"),
    [
        pytest.param("bitbucket", "http://x", "a/b", "t", "Unknown forge", id="an unknown forge"),
        pytest.param("github", "", "a/b", "t", "not fully set", id="no API URL"),
        pytest.param("gitlab", "http://x", "a/b", "", "not fully set", id="no token"),
    ],
)
def test_an_incomplete_forge_is_refused_before_any_request(kind, url, project, token, message):
    with pytest.raises(ForgeError, match=message):
        Forge(kind, url, project, token).open_pull_request(head=BRANCH, base="main", title="t", body="b")
