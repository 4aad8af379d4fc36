"""/settings/ (this person's devices and what they want pushed) and the installable app's files at the root.

/sw.js, /manifest.webmanifest and /offline/ are served by views rather than from /static/ because a service
worker only controls the scope it is served from: the whole site needs them at "/".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import zoneinfo
from functools import cache
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from approvals import push
from approvals.models import NotificationSettings, PushSubscription
from config.bodies import Unreadable, request_json

THEME_COLOR = "#1f5f8b"
BACKGROUND_COLOR = "#f6f7f9"
# What the service worker keeps for the offline page: the page itself and what it needs to look right.
OFFLINE_SHELL_STATIC = (
    "css/app.css",
    "css/approvals.css",
    "css/settings.css",
    "vendor/htmx-2.0.11.min.js",
    "icons/icon-192.png",
    "icons/badge-96.png",
)
IOS = re.compile(r"iPhone|iPad|iPod")
BASE64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


# --- the page --------------------------------------------------------------------------------------------------


@cache
def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones()) if "/" in name or name == "UTC"]


class NotificationSettingsForm(forms.ModelForm):
    time_zone = forms.ChoiceField(choices=time_zone_choices, label="Time zone")

    class Meta:
        model = NotificationSettings
        fields = ["mode", "quiet_start", "quiet_end", "time_zone"]
        labels = {"mode": "Notify me about", "quiet_start": "Quiet from", "quiet_end": "Quiet until"}
        help_texts = {"quiet_start": "", "quiet_end": ""}
        widgets = {
            "mode": forms.RadioSelect,
            "quiet_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "quiet_end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }

    def clean(self):
        data = super().clean()
        if self.has_error("quiet_start") or self.has_error("quiet_end"):
            return data
        start, end = data.get("quiet_start"), data.get("quiet_end")
        if (start is None) != (end is None):
            missing = "quiet_start" if start is None else "quiet_end"
            self.add_error(missing, "Give both ends of the quiet hours, or neither.")
        elif start is not None and start == end:
            self.add_error("quiet_end", "Quiet hours must end at a different time than they start.")
        return data


def is_ios(request: HttpRequest) -> bool:
    return bool(IOS.search(request.headers.get("User-Agent", "")))


def _notification_settings(user) -> NotificationSettings:
    """The person's saved choices, or the defaults (saved only when they save the form)."""
    return NotificationSettings.objects.filter(user=user).first() or NotificationSettings(user=user)


def _page_context(request: HttpRequest, form: NotificationSettingsForm | None = None, **extra) -> dict:
    return {
        "form": form or NotificationSettingsForm(instance=_notification_settings(request.user)),
        "devices": PushSubscription.objects.filter(user=request.user),
        "vapid_public_key": getattr(settings, "VAPID_PUBLIC_KEY", ""),
        "ios": is_ios(request),
        **extra,
    }


@require_http_methods(["GET", "POST"])
def settings_page(request: HttpRequest) -> HttpResponse:
    """Devices and notification choices; the form posts plainly and, with htmx, swaps itself."""
    if request.method == "GET":
        if request.htmx and request.htmx.target == "device-list":
            return render(request, "approvals/settings.html#device_list", _page_context(request))
        return render(request, "approvals/settings.html", _page_context(request))

    form = NotificationSettingsForm(request.POST, instance=_notification_settings(request.user))
    if form.is_valid():
        form.save()
        if not request.htmx:
            messages.success(request, "Notification choices saved.")
            return redirect("settings")
        return render(request, "approvals/settings.html#notify_form", _page_context(request, saved=True))
    template = "approvals/settings.html#notify_form" if request.htmx else "approvals/settings.html"
    return render(request, template, _page_context(request, form=form, show_errors=True))


# --- devices ---------------------------------------------------------------------------------------------------


class BadSubscription(ValueError):
    pass


def _b64url_bytes(value, name: str) -> bytes:
    if not isinstance(value, str) or not BASE64URL.match(value):
        raise BadSubscription(f"keys.{name} must be base64url text.")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as error:
        raise BadSubscription(f"keys.{name} is not valid base64url.") from error


def clean_subscription(body) -> dict:
    """The fields of a PushSubscription from what the browser's PushSubscription.toJSON() gave; or BadSubscription."""
    if not isinstance(body, dict):
        raise BadSubscription('Send a JSON object: {"endpoint", "keys": {"p256dh", "auth"}, "device_name"}.')
    endpoint = body.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint or len(endpoint) > 1000:
        raise BadSubscription("endpoint must be a URL of at most 1000 characters.")
    if refusal := push.endpoint_refusal(endpoint):
        raise BadSubscription(refusal)
    keys = body.get("keys")
    if not isinstance(keys, dict):
        raise BadSubscription("keys must hold p256dh and auth.")
    p256dh = _b64url_bytes(keys.get("p256dh"), "p256dh")
    if len(p256dh) != 65 or p256dh[0] != 0x04:
        raise BadSubscription("keys.p256dh must be an uncompressed P-256 point (65 bytes starting with 0x04).")
    if len(_b64url_bytes(keys.get("auth"), "auth")) != 16:
        raise BadSubscription("keys.auth must be 16 bytes.")
    name = body.get("device_name", "")
    if not isinstance(name, str) or len(name.strip()) > 100:
        raise BadSubscription("device_name must be text of at most 100 characters.")
    return {
        "endpoint": endpoint,
        "p256dh": keys["p256dh"].rstrip("="),
        "auth": keys["auth"].rstrip("="),
        "device_name": name.strip(),
    }


def guess_device_name(user_agent: str) -> str:
    for needle, name in (("iPhone", "iPhone"), ("iPad", "iPad"), ("Android", "Android phone"), ("Mac OS", "Mac"),
                         ("Windows", "Windows computer"), ("Linux", "Linux computer")):
        if needle in user_agent:
            return name
    return "Browser"


def _json_error(reason: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"ok": False, "error": reason}, status=status)


@require_POST
def push_subscribe(request: HttpRequest) -> JsonResponse:
    """Save this browser's push subscription for the signed-in person (a browser subscribed before moves over)."""
    try:
        fields = clean_subscription(request_json(request))
    except Unreadable as error:
        return _json_error(f"Send the subscription as JSON: {error.reason}", status=error.status)
    except BadSubscription as error:
        return _json_error(str(error))
    user_agent = request.headers.get("User-Agent", "")
    fields["device_name"] = fields["device_name"] or guess_device_name(user_agent)
    subscription, created = PushSubscription.objects.update_or_create(
        endpoint=fields.pop("endpoint"),
        defaults={**fields, "user": request.user, "user_agent": user_agent[:300], "last_error": ""},
    )
    return JsonResponse(
        {"ok": True, "id": subscription.pk, "device_name": subscription.device_name}, status=201 if created else 200
    )


def _own_subscription(request: HttpRequest) -> PushSubscription | None:
    """The person's own device, named by id (a form) or by endpoint (this browser's JSON); None for anyone else's.
    Unreadable for JSON it cannot read."""
    if request.content_type == "application/json":
        body = request_json(request)
        endpoint = body.get("endpoint") if isinstance(body, dict) else None
        lookup = {"endpoint": endpoint} if isinstance(endpoint, str) else None
    else:
        device_id = request.POST.get("id", "")
        lookup = {"pk": int(device_id)} if device_id.isdigit() else None
    if lookup is None:
        return None
    return PushSubscription.objects.filter(user=request.user, **lookup).first()


def _no_such_device(request: HttpRequest) -> JsonResponse:
    if request.content_type == "application/json":
        return _json_error("No such device.", status=404)
    raise Http404("No such device.")


def _device_answer(request: HttpRequest, message: str, *, ok: bool = True) -> HttpResponse:
    """JSON for the page's script, the device list for htmx, a redirect with a message without JavaScript."""
    if request.content_type == "application/json":
        return JsonResponse({"ok": ok, "message": message}, status=200 if ok else 503)
    if request.htmx:
        return render(
            request, "approvals/settings.html#device_list", _page_context(request, device_message=message, ok=ok)
        )
    (messages.success if ok else messages.error)(request, message)
    return redirect("settings")


@require_POST
def push_unsubscribe(request: HttpRequest) -> HttpResponse:
    try:
        subscription = _own_subscription(request)
    except Unreadable as error:
        return _json_error(error.reason, status=error.status)
    if subscription is None:
        return _no_such_device(request)
    name = str(subscription)
    subscription.delete()
    return _device_answer(request, f"{name} will no longer get notifications.")


@require_POST
def push_test(request: HttpRequest) -> HttpResponse:
    """Queue a test notification to one of the person's devices (the push worker sends it)."""
    try:
        subscription = _own_subscription(request)
    except Unreadable as error:
        return _json_error(error.reason, status=error.status)
    if subscription is None:
        return _no_such_device(request)
    if refusal := push.endpoint_refusal(subscription.endpoint):
        return _device_answer(request, f"Not sent to {subscription}: {refusal}", ok=False)
    try:
        from approvals.delivery import enqueue_best_effort
        from approvals.push import payload_for_test
        from approvals.tasks import send_push
    except ImportError:
        return _device_answer(request, "Test notifications are not available on this server yet.", ok=False)
    if not enqueue_best_effort(send_push, subscription.pk, json.dumps(payload_for_test())):
        return _device_answer(request, "Could not queue the test: the task queue is unreachable.", ok=False)
    return _device_answer(request, f"Test notification sent to {subscription}: it should buzz in a few seconds.")


# --- the installable app ---------------------------------------------------------------------------------------


@login_not_required
@require_GET
def manifest(request: HttpRequest) -> JsonResponse:
    icon = {"type": "image/png"}
    data = {
        "id": "/",
        "name": "Goalpost",
        "short_name": "Goalpost",
        "description": "Approve or reject your coding agents' steps with one tap.",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "orientation": "portrait",
        "theme_color": THEME_COLOR,
        "background_color": BACKGROUND_COLOR,
        "icons": [
            {**icon, "src": static("icons/icon-192.png"), "sizes": "192x192", "purpose": "any"},
            {**icon, "src": static("icons/icon-512.png"), "sizes": "512x512", "purpose": "any"},
            {**icon, "src": static("icons/maskable-512.png"), "sizes": "512x512", "purpose": "maskable"},
        ],
    }
    response = JsonResponse(data, content_type="application/manifest+json")
    response["Cache-Control"] = "public, max-age=3600"
    return response


@login_not_required
@never_cache
@require_GET
def service_worker(request: HttpRequest) -> HttpResponse:
    """static/sw.js at the root scope, told which versioned files make the offline page."""
    path = finders.find("sw.js")
    if not path:
        raise Http404("sw.js is missing")
    source = Path(path).read_text(encoding="utf-8")
    precache = ["/offline/", *(static(name) for name in OFFLINE_SHELL_STATIC)]
    # Changed files (a deploy, an edit) change the worker's bytes: browsers install it and drop the old cache.
    digest = hashlib.sha256(source.encode())
    for name in OFFLINE_SHELL_STATIC:
        digest.update(static(name).encode())
        digest.update(Path(finders.find(name)).read_bytes())
    config = {
        "cacheName": f"goalpost-{digest.hexdigest()[:12]}",
        "precache": precache,
        "icon": static("icons/icon-192.png"),
        "badge": static("icons/badge-96.png"),
    }
    response = HttpResponse(
        f"const GOALPOST = {json.dumps(config)};\n{source}", content_type="application/javascript; charset=utf-8"
    )
    response["Service-Worker-Allowed"] = "/"
    return response


@login_not_required
@require_GET
def offline(request: HttpRequest) -> HttpResponse:
    return render(request, "offline.html", {"theme_color": THEME_COLOR})
