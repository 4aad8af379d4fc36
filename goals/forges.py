"""Opening a pull request (a merge request on GitLab) for a goal's branch on the forge staff set on its repository:
GitHub, GitLab or Gitea, through their REST APIs, with the token stored on the repository.

An open pull request for the same branches is found and returned instead of a second one, before creating and
again when the forge answers that one already exists. Every failure is a ForgeError whose message is fit for the
page; the token is sent in one header and never appears in a message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import requests

TIMEOUT_S = 15
USER_AGENT = "Goalpost"
LISTED = 50


class ForgeError(Exception):
    """The forge could not open the pull request; the message says why, for a person."""


@dataclass(frozen=True)
class PullRequest:
    url: str
    number: int
    existing: bool  # True: it was open already, and is linked rather than duplicated


@dataclass(frozen=True)
class Forge:
    kind: str  # "github", "gitlab" or "gitea"
    api_url: str  # https://api.github.com, https://gitlab.example/api/v4, https://gitea.example/api/v1
    project: str  # owner/name (GitLab: the project's full path, or its numeric id)
    token: str

    def open_pull_request(self, *, head: str, base: str, title: str, body: str) -> PullRequest:
        """Open a pull request from ``head`` into ``base``, or find the one open already."""
        if self.kind not in OPENERS:
            raise ForgeError(f"Unknown forge “{self.kind}”: GitHub, GitLab or Gitea.")
        if not (self.api_url and self.project and self.token):
            raise ForgeError("The repository's forge is not fully set: staff must give its API URL, project and token.")
        session = requests.Session()
        session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json", **_auth(self.kind, self.token)})
        with session:
            return OPENERS[self.kind](self, session, head, base, title, body)

    def _url(self, path: str) -> str:
        return self.api_url.rstrip("/") + path

    def _call(self, session: requests.Session, method: str, path: str, **kwargs) -> requests.Response:
        host = urlsplit(self.api_url).netloc or self.api_url
        try:
            return session.request(method, self._url(path), timeout=TIMEOUT_S, **kwargs)
        except requests.Timeout:
            raise ForgeError(f"The forge at {host} did not answer within {TIMEOUT_S} s: try again later.") from None
        except requests.RequestException:
            raise ForgeError(f"Could not reach the forge at {host}: is it up, and is the API URL right?") from None


def _auth(kind: str, token: str) -> dict[str, str]:
    if kind == "github":
        return {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28"}  # fmt: skip
    if kind == "gitlab":
        return {"PRIVATE-TOKEN": token}
    return {"Authorization": f"token {token}"}


def _json(response: requests.Response):
    try:
        return response.json()
    except ValueError:
        return None


def _forge_message(response: requests.Response) -> str:
    """What the forge said about an error, in one short line."""
    data = _json(response)
    parts: list[str] = []
    if isinstance(data, dict):
        message = data.get("message") or data.get("error")
        parts += [str(item) for item in message] if isinstance(message, list) else [str(message or "")]
        for error in data.get("errors") or []:
            detail = error.get("message") or error.get("code") if isinstance(error, dict) else error
            parts.append(str(detail or ""))
    text = "; ".join(part for part in parts if part) or response.reason or ""
    return " ".join(text.split())[:300]


def _refusal(response: requests.Response, forge: Forge) -> ForgeError:
    said = _forge_message(response)
    status = response.status_code
    if status == 401:
        return ForgeError(f"The forge refused the repository's token (401): staff must set a valid one. {said}".strip())
    if status == 403:
        return ForgeError(f"The token may not open pull requests on {forge.project} (403). {said}".strip())
    if status == 404:
        return ForgeError(f"The forge has no project “{forge.project}”, or the token cannot see it (404).")
    return ForgeError(f"The forge answered {status}: {said or 'no reason given'}.")


def _already_exists(response: requests.Response) -> bool:
    return response.status_code in (409, 422) and "already exist" in _forge_message(response).lower()


def _created(forge: Forge, response: requests.Response, url_key: str, number_key: str) -> PullRequest:
    data = _json(response)
    if response.status_code not in (200, 201) or not isinstance(data, dict) or not data.get(url_key):
        raise _refusal(response, forge)
    return PullRequest(url=str(data[url_key]), number=int(data.get(number_key) or 0), existing=False)


def _find_or_create(
    forge: Forge,
    find: Callable[[], PullRequest | None],
    create: Callable[[], requests.Response],
    url_key: str,
    number_key: str,
) -> PullRequest:
    """The open pull request for the branch if there is one, else a new one; a creation that races another (the
    forge says it already exists) finds the winner's."""
    found = find()
    if found:
        return found
    response = create()
    if _already_exists(response):
        found = find()
        if found:
            return found
    return _created(forge, response, url_key, number_key)


def _open_on_github(forge: Forge, session, head: str, base: str, title: str, body: str) -> PullRequest:
    path = f"/repos/{forge.project}/pulls"
    owner = forge.project.split("/", 1)[0]

    def find() -> PullRequest | None:
        response = forge._call(session, "GET", path, params={"head": f"{owner}:{head}", "base": base, "state": "open"})
        if response.status_code != 200:
            raise _refusal(response, forge)
        pulls = _json(response) or []
        first = pulls[0] if isinstance(pulls, list) and pulls else None
        return PullRequest(str(first["html_url"]), int(first["number"]), existing=True) if first else None

    fields = {"title": title, "head": head, "base": base, "body": body}
    return _find_or_create(forge, find, lambda: forge._call(session, "POST", path, json=fields), "html_url", "number")


def _open_on_gitlab(forge: Forge, session, head: str, base: str, title: str, body: str) -> PullRequest:
    path = f"/projects/{quote(forge.project, safe='')}/merge_requests"

    def find() -> PullRequest | None:
        params = {"source_branch": head, "target_branch": base, "state": "opened"}
        response = forge._call(session, "GET", path, params=params)
        if response.status_code != 200:
            raise _refusal(response, forge)
        merge_requests = _json(response) or []
        first = merge_requests[0] if isinstance(merge_requests, list) and merge_requests else None
        return PullRequest(str(first["web_url"]), int(first["iid"]), existing=True) if first else None

    fields = {"source_branch": head, "target_branch": base, "title": title, "description": body}
    return _find_or_create(forge, find, lambda: forge._call(session, "POST", path, json=fields), "web_url", "iid")


def _open_on_gitea(forge: Forge, session, head: str, base: str, title: str, body: str) -> PullRequest:
    path = f"/repos/{forge.project}/pulls"

    def find() -> PullRequest | None:
        # The list, filtered here: the by-branches lookup puts the branch (goalpost/<id>, with its slash) in the path.
        response = forge._call(session, "GET", path, params={"state": "open", "limit": LISTED})
        if response.status_code != 200:
            raise _refusal(response, forge)
        for pull in _json(response) or []:
            if not isinstance(pull, dict):
                continue
            head_ref = (pull.get("head") or {}).get("ref")
            base_ref = (pull.get("base") or {}).get("ref")
            if head_ref == head and base_ref == base:
                return PullRequest(str(pull["html_url"]), int(pull["number"]), existing=True)
        return None

    fields = {"title": title, "head": head, "base": base, "body": body}
    return _find_or_create(forge, find, lambda: forge._call(session, "POST", path, json=fields), "html_url", "number")


OPENERS = {"github": _open_on_github, "gitlab": _open_on_gitlab, "gitea": _open_on_gitea}
