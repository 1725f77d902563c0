"""``path("admin/queues/", include("tarefa.contrib.django.urls"))``: the
dashboard at /admin/queues/ for staff (views.py)."""

from __future__ import annotations

from django.urls import path, re_path

from . import views

app_name = "tarefa"
urlpatterns = [
    path("api/v1/health", views.health, name="health"),
    re_path(r"^(?P<rest>.*)$", views.dashboard, name="dashboard"),
]
