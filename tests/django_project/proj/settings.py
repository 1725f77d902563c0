"""A small real Django project: a contact form whose confirmation e-mail is
sent by a tarefa job once the message is saved (seed 000's sprint). The
database (SQLite, or PostgreSQL for the outbox) and the e-mail directory
come from the environment the tests set."""

import os
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "tests-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "tarefa.contrib.django",
    "contact",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "proj.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("CONTACT_DB", str(BASE_DIR / "contact.sqlite3")),
        "CONN_MAX_AGE": 0,  # as a request does: a connection per job
    }
}
if "CONTACT_POSTGRES" in os.environ:  # postgresql://user@host:port/name: the outbox's tests
    where = urlsplit(os.environ["CONTACT_POSTGRES"])
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": where.path.lstrip("/"),
        "USER": where.username,
        "HOST": where.hostname,
        "PORT": where.port,
        "CONN_MAX_AGE": 0,
    }
USE_TZ = True
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = os.environ.get("CONTACT_MAIL_DIR", str(BASE_DIR / "sent"))

TAREFA = {"APP": "contact.tasks:app"}
