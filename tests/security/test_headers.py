"""The Content-Security-Policy, the cookies in production, and the sign-in rate limit."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from tests.factories import client_for

ROOT = Path(__file__).resolve().parents[2]

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "frame-ancestors": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
}


def main_pages(world) -> dict[str, str]:
    return {
        "inbox": reverse("home"),
        "goal list": reverse("goals:list"),
        "goal form": reverse("goals:create"),
        "goal edit": reverse("goals:edit", args=[world.goal.pk]),
        "goal detail": reverse("goals:detail", args=[world.goal.pk]),
        "approval page": reverse("approvals:detail", args=[world.request.pk]),
        "diff file": reverse("approvals:file", args=[world.request.pk, 0]),
        "agents": reverse("gateway:page", args=[world.goal.pk]),
        "settings": reverse("settings"),
    }


def directives(header: str) -> dict[str, str]:
    return {name: value for name, _, value in (part.strip().partition(" ") for part in header.split(";")) if name}


def test_every_page_carries_the_policy(world):
    client = client_for(world, "owner")
    for name, url in {**main_pages(world), "sign-in": reverse("login"), "offline": reverse("offline")}.items():
        response = client.get(url) if name != "sign-in" else client_for(world, "anonymous").get(url)
        assert response.status_code == 200, name
        policy = directives(response.headers["Content-Security-Policy"])
        assert {key: policy.get(key) for key in POLICY} == POLICY, name
        connect = policy["connect-src"].split()
        assert connect[0] == "'self'" and {"ws://127.0.0.1:*", "wss://127.0.0.1:*"} <= set(connect), name
        assert "unsafe" not in response.headers["Content-Security-Policy"]


INLINE = {
    "style attribute": re.compile(r"<[^>]+\sstyle\s*=", re.I),
    "inline <style>": re.compile(r"<style[\s>]", re.I),
    "inline <script>": re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.I),
    "event handler attribute": re.compile(r"<[^>]+\s(on[a-z]+|hx-on[:\w-]*)\s*=", re.I),
    "javascript: URL": re.compile(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", re.I),
}


@pytest.mark.parametrize("htmx", [False, True], ids=["full page", "htmx partial"])
def test_pages_hold_nothing_the_policy_would_block(world, htmx):
    """What the browser test checks live, checked here on the markup of every main page and its partial."""
    client = client_for(world, "owner")
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    for name, url in main_pages(world).items():
        html = client.get(url, **headers).content.decode()
        found = {kind: pattern.search(html).group(0) for kind, pattern in INLINE.items() if pattern.search(html)}
        assert not found, (name, found)


def test_htmx_is_told_to_inject_no_style_and_to_eval_nothing(world):
    html = client_for(world, "owner").get(reverse("home")).content.decode()
    config = re.search(r"""<meta name="htmx-config" content='([^']*)'>""", html)
    assert config and json.loads(config.group(1)) == {"includeIndicatorStyles": False, "allowEval": False}


def production_settings(tmp_path, **extra) -> dict:
    """Settings as `GOALPOST_HTTPS=1` production loads them, in a fresh interpreter."""
    script = (
        "import json, django; from django.conf import settings as s; django.setup(); print(json.dumps({"
        "k: getattr(s, k) for k in ('SESSION_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY', 'SESSION_COOKIE_SAMESITE',"
        " 'CSRF_COOKIE_SECURE', 'CSRF_COOKIE_HTTPONLY', 'CSRF_COOKIE_SAMESITE', 'SECURE_SSL_REDIRECT',"
        " 'SECURE_HSTS_SECONDS')} | {'connect': s.CONTENT_SECURITY_POLICY['DIRECTIVES']['connect-src']}))"
    )
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "GOALPOST_VAR_DIR": str(tmp_path),
        "GOALPOST_HTTPS": "1",
        "ALLOWED_HOSTS": "goalpost.example.com",
        **extra,
    }
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_cookies_are_secure_http_only_and_same_site(tmp_path):
    loaded = production_settings(tmp_path)
    assert loaded["SESSION_COOKIE_SECURE"] and loaded["CSRF_COOKIE_SECURE"]
    assert loaded["SESSION_COOKIE_HTTPONLY"] and loaded["CSRF_COOKIE_HTTPONLY"]
    assert loaded["SESSION_COOKIE_SAMESITE"] == loaded["CSRF_COOKIE_SAMESITE"] == "Lax"
    assert loaded["SECURE_SSL_REDIRECT"] and loaded["SECURE_HSTS_SECONDS"] >= 31536000
    # Over HTTPS the socket is wss: only, and only to the site's own host.
    assert loaded["connect"] == ["'self'", "wss://goalpost.example.com:*"]


def test_the_cookies_a_browser_gets_say_so(world, settings):
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    client = client_for(world, "anonymous")
    response = client.post(reverse("login"), {"username": "owner", "password": "owner-pass-123"})
    assert response.status_code == 302
    for name in ("sessionid", "csrftoken"):
        cookie = response.cookies[name]
        assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax", name


def test_the_sign_in_lockout_holds_for_the_admin_sign_in_too(world):
    """Five wrong passwords on the site's form, and the right one is refused on the admin's form as well."""
    client = client_for(world, "anonymous")
    for _ in range(5):
        client.post(reverse("login"), {"username": "owner", "password": "wrong"})
    locked = client.post(
        reverse("admin:login"), {"username": "owner", "password": "owner-pass-123", "next": "/admin/"}
    )
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_lockout_is_per_name_and_address(world):
    """Someone guessing the owner's password does not lock the approver out."""
    client = client_for(world, "anonymous")
    for _ in range(5):
        client.post(reverse("login"), {"username": "owner", "password": "wrong"})
    response = client.post(reverse("login"), {"username": "approver", "password": "approver-pass-123"})
    assert response.status_code == 302
