"""The project's URLs with the goal page's agents section included, as config/urls.py includes it."""

from django.urls import include, path

from config.urls import urlpatterns as project_urlpatterns

included = any(getattr(pattern, "namespace", None) == "gateway" for pattern in project_urlpatterns)
urlpatterns = project_urlpatterns if included else [*project_urlpatterns, path("", include("gateway.urls"))]
