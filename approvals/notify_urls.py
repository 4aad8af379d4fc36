from django.urls import path

from approvals import action_views, settings_views

# /settings/ (devices and notification choices), /sw.js, /manifest.webmanifest, /offline/, the push action endpoint.
urlpatterns: list = [
    path("push/action", action_views.push_action, name="push_action"),
    path("settings/", settings_views.settings_page, name="settings"),
    path("settings/push/subscribe", settings_views.push_subscribe, name="push_subscribe"),
    path("settings/push/unsubscribe", settings_views.push_unsubscribe, name="push_unsubscribe"),
    path("settings/push/test", settings_views.push_test, name="push_test"),
    path("sw.js", settings_views.service_worker, name="service_worker"),
    path("manifest.webmanifest", settings_views.manifest, name="manifest"),
    path("offline/", settings_views.offline, name="offline"),
]
