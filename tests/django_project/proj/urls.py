from contact import views
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("contact/", views.contact, name="contact"),
    path("admin/queues/", include("tarefa.contrib.django.urls")),
    path("admin/", admin.site.urls),
]
