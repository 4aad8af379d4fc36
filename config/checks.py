"""Django's deploy checks of the security and CSRF middleware, which MIDDLEWARE names through config/middleware.py.

Django finds those two by their dotted paths: without them it warns that they are missing (security.W001, W003,
silenced in settings) and skips the checks of their settings (HSTS, the HTTPS redirect, nosniff, the referrer and
opener policies, a secure CSRF cookie). MIDDLEWARE names our subclasses of them, so those checks run here as if it
named Django's classes, and a MIDDLEWARE that has neither warns here.
"""

from django.conf import settings
from django.core import checks
from django.core.checks.security import base, csrf
from django.middleware.csrf import CsrfViewMiddleware
from django.middleware.security import SecurityMiddleware
from django.utils.module_loading import import_string

CHECKED = (SecurityMiddleware, CsrfViewMiddleware)
SETTINGS_CHECKS = (
    base.check_sts,
    base.check_sts_include_subdomains,
    base.check_sts_preload,
    base.check_content_type_nosniff,
    base.check_ssl_redirect,
    base.check_referrer_policy,
    base.check_cross_origin_opener_policy,
    csrf.check_csrf_cookie_secure,
)


def dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def as_django_names_it(path: str) -> str:
    """Django's dotted path for a subclass of its security or CSRF middleware; any other path as it is."""
    middleware = import_string(path)
    for django_class in CHECKED:
        if isinstance(middleware, type) and issubclass(middleware, django_class):
            return dotted(django_class)
    return path


def check_middleware_settings(app_configs, **kwargs) -> list[checks.CheckMessage]:
    named = [as_django_names_it(path) for path in settings.MIDDLEWARE]
    messages: list[checks.CheckMessage] = [
        checks.Warning(f"MIDDLEWARE has no {dotted(cls)}, nor a subclass of it.", id="goalpost.W001")
        for cls in CHECKED
        if dotted(cls) not in named
    ]
    from django.test.utils import override_settings  # here: django.test is heavy, and every process loads this module

    with override_settings(MIDDLEWARE=named):
        messages += [message for check in SETTINGS_CHECKS for message in check(app_configs)]
    return messages
