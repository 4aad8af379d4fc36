from django.urls import path

from approvals import views

app_name = "approvals"

# The inbox itself is "/" (named `home`, in config/urls.py); these are the approval page and its endpoints.
urlpatterns = [
    path("approvals/<int:pk>/", views.request_detail, name="detail"),
    path("approvals/<int:pk>/decide", views.decide, name="decide"),
    path("approvals/<int:pk>/pull-request", views.open_pull_request, name="open_pull_request"),
    path("approvals/<int:pk>/files/", views.request_files, name="files"),
    path("approvals/<int:pk>/files/<int:index>/", views.request_file, name="file"),
]
