"""The installable app: manifest, service worker and offline page at the root, icons, no CDN anywhere."""

import json
import re
import struct
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders

ROOT = Path(__file__).resolve().parents[2]


def png_size(path: str) -> tuple[int, int]:
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def static_file(url: str) -> str:
    assert url.startswith("/static/"), url
    path = finders.find(url.removeprefix("/static/"))
    assert path, f"{url} does not exist"
    return path


@pytest.mark.django_db
def test_the_manifest_makes_goalpost_installable_without_a_sign_in(client):
    response = client.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/manifest+json"
    manifest = json.loads(response.content)
    assert manifest["name"] == "Goalpost"
    assert manifest["short_name"] == "Goalpost"
    assert (manifest["start_url"], manifest["scope"], manifest["display"]) == ("/", "/", "standalone")
    assert re.fullmatch(r"#[0-9a-f]{6}", manifest["theme_color"])
    assert re.fullmatch(r"#[0-9a-f]{6}", manifest["background_color"])
    kinds = {(icon["sizes"], icon["purpose"]) for icon in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= kinds


@pytest.mark.django_db
def test_every_icon_in_the_manifest_is_a_png_of_the_size_it_claims(client):
    for icon in client.get("/manifest.webmanifest").json()["icons"]:
        assert icon["type"] == "image/png"
        width, height = png_size(static_file(icon["src"]))
        assert f"{width}x{height}" == icon["sizes"]


def test_the_apple_touch_icon_and_the_notification_badge_exist():
    assert png_size(finders.find("icons/apple-touch-icon.png")) == (180, 180)
    assert png_size(finders.find("icons/badge-96.png")) == (96, 96)


@pytest.mark.django_db
def test_the_service_worker_is_served_at_the_root_scope_uncached(client):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert response["Service-Worker-Allowed"] == "/"
    assert "no-cache" in response["Cache-Control"]
    source = response.content.decode()
    assert source.startswith("const GOALPOST = ")
    assert 'addEventListener("push"' in source
    assert 'addEventListener("notificationclick"' in source


@pytest.mark.django_db
def test_the_service_worker_precaches_the_offline_shell_and_nothing_that_can_go_stale(client):
    config = json.loads(client.get("/sw.js").content.decode().split("\n", 1)[0].removeprefix("const GOALPOST = ")[:-1])
    assert config["precache"][0] == "/offline/"
    for url in config["precache"][1:]:
        static_file(url)
    assert any(url.endswith(".css") for url in config["precache"])
    assert any("htmx" in url for url in config["precache"])
    # The inbox and the approval pages are never stored: offline they would show decided requests as waiting.
    assert "/" not in config["precache"]
    assert not any(url.startswith("/approvals/") for url in config["precache"])


@pytest.mark.django_db
def test_a_new_deploy_gives_the_service_worker_new_bytes(client, settings, tmp_path):
    before = client.get("/sw.js").content
    changed = tmp_path / "css"
    changed.mkdir()
    (changed / "app.css").write_text("body { color: red; }")
    settings.STATICFILES_DIRS = [tmp_path, *settings.STATICFILES_DIRS]
    finders.get_finder.cache_clear()
    try:
        assert client.get("/sw.js").content != before
    finally:
        finders.get_finder.cache_clear()


@pytest.mark.django_db
def test_the_offline_page_says_nothing_was_decided_without_a_sign_in(client):
    response = client.get("/offline/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "You are offline" in html
    assert "nothing was decided" in html
    assert "csrfmiddlewaretoken" not in html
    assert "ws-connect" not in html


@pytest.mark.django_db
def test_every_page_links_the_manifest_icons_and_the_scripts(client, owner):
    client.force_login(owner)
    html = client.get("/settings/").content.decode()
    assert '<link rel="manifest" href="/manifest.webmanifest">' in html
    assert 'rel="apple-touch-icon"' in html
    assert '<meta name="apple-mobile-web-app-capable" content="yes">' in html
    assert '<meta name="theme-color" content="#1f5f8b">' in html
    assert 'hx-ext="ws,live" ws-connect="/ws/"' in html
    for script in ("vendor/htmx-ext-ws-2.0.4.js", "js/live.js", "js/app.js"):
        assert f'src="/static/{script}"' in html


@pytest.mark.django_db
def test_a_signed_out_page_opens_no_socket(client):
    html = client.get("/accounts/login/").content.decode()
    assert "ws-connect" not in html
    assert "js/live.js" not in html
    assert "js/app.js" in html


EXTERNAL_SOURCE = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=["'](?:https?:)?//""", re.I)
EXTERNAL_IMPORT = re.compile(r"""(?:@import\s+(?:url\()?|url\(|importScripts\(|import\s*\()\s*["']?(?:https?:)?//""", re.I)


def test_no_template_or_static_file_loads_anything_from_a_cdn():
    files = [*ROOT.joinpath("templates").rglob("*.html"), *ROOT.joinpath("static").rglob("*.css")]
    files += [path for path in ROOT.joinpath("static").rglob("*.js") if "vendor" not in path.parts]
    assert len(files) > 10
    offenders = [
        str(path.relative_to(ROOT))
        for path in files
        if EXTERNAL_SOURCE.search(path.read_text()) or EXTERNAL_IMPORT.search(path.read_text())
    ]
    assert offenders == []
