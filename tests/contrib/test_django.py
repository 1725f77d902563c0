"""tarefa.contrib.django in a real Django project (tests/django_project: seed
000's contact form, whose confirmation e-mail a job sends once the message is
committed), on SQLite in a temporary directory and a real Redis; its worker
as ``manage.py tarefa worker``, a real subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tarefa import JobNotFound, JobState
from tarefa.worker import Worker

from ..conftest import PYTHONPATH
from ..waits import PATIENCE, wait_until
from ..web.conftest import needs_chromium

PROJECT = Path(__file__).parent.parent / "django_project"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The project, set up in this process (once: Django's settings are global)."""
    import django
    from django.core.management import call_command

    where = tmp_path_factory.mktemp("django_site")
    os.environ["CONTACT_DB"] = str(where / "contact.sqlite3")
    os.environ["CONTACT_MAIL_DIR"] = str(where / "sent")
    os.environ["DJANGO_SETTINGS_MODULE"] = "proj.settings"
    sys.path.insert(0, str(PROJECT))
    django.setup()
    call_command("migrate", verbosity=0)
    return where


@pytest.fixture
def tasks(site, r):
    """The project's tasks module, its App on the test session's fresh Redis."""
    from contact import tasks
    from contact.models import Message

    Message.objects.all().delete()
    tasks.app._store = None
    yield tasks
    tasks.app.close()


def manage(site, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``manage.py ARGS`` in a subprocess; ``env``: variables of its own."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT,
        env=project_env(env),
        capture_output=True,
        text=True,
        timeout=PATIENCE * 2,
    )


def project_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(PROJECT), PYTHONPATH]), **extra or {})


def queued(app, queue="emails") -> int:
    return app.queue(queue).counts()["queued"]


def test_a_job_is_enqueued_on_the_outermost_commit_and_never_on_rollback(tasks):
    from contact.models import Message
    from django.db import transaction

    send = tasks.send_confirmation
    with transaction.atomic():
        message = Message.objects.create(name="Ana", email="ana@example.com", body="hi")
        job = send.enqueue_on_commit(message.pk)
        with transaction.atomic():  # a savepoint that commits: still waits for the outer
            kept = send.enqueue_on_commit(message.pk)
        try:
            with transaction.atomic():  # a savepoint rolled back: its job is dropped
                dropped = send.enqueue_on_commit(message.pk)
                raise ValueError("the visitor's upload failed")
        except ValueError:
            pass
        assert queued(tasks.app) == 0  # nothing before the commit
    assert queued(tasks.app) == 2
    assert job.status == kept.status == JobState.QUEUED
    assert tasks.app.backend.job("emails", dropped.id) is None
    with pytest.raises(RuntimeError), transaction.atomic():
        send.enqueue_on_commit(message.pk)
        raise RuntimeError("rolled back")
    assert queued(tasks.app) == 2
    with pytest.raises(TypeError, match="send_confirmation"):
        send.enqueue_on_commit()  # the arguments are checked at the call, not at the commit


def test_the_contact_form_saves_enqueues_and_the_worker_sends_the_mail(tasks, site):
    from contact.models import Message
    from django.test import Client

    answer = Client().post("/contact/", {"name": "Bia", "email": "bia@example.com", "body": "oi"})
    assert answer.status_code == 201
    job = tasks.app.job(answer.json()["job"])
    assert job.status == JobState.QUEUED
    assert Client().post("/contact/", {"name": "Bia"}).status_code == 400  # invalid: no job
    assert queued(tasks.app) == 1

    worker = manage(site, "tarefa", "worker", "--burst", "-q", "emails")
    assert worker.returncode == 0, worker.stderr
    assert job.result(timeout=PATIENCE) == "bia@example.com"
    assert Message.objects.get(pk=answer.json()["message"]).confirmed_at is not None
    (mail,) = (site / "sent").iterdir()
    assert "Hello Bia, thank you for writing." in mail.read_text()


def test_manage_py_tarefa_runs_every_command_for_the_projects_app(tasks, site):
    tasks.send_confirmation.enqueue(1)
    listed = manage(site, "tarefa", "info")
    assert listed.returncode == 0 and "emails" in listed.stdout, listed.stderr
    described = manage(site, "tarefa", "tasks")  # a command that takes APP
    assert "contact.tasks:send_confirmation" in described.stdout, described.stderr
    wrong = manage(site, "tarefa", "worker", "--concurrency", "none")
    assert wrong.returncode == 2 and "concurrency" in wrong.stderr
    helped = manage(site, "tarefa", "--help")
    assert helped.returncode == 0 and "manage.py tarefa" in helped.stdout


def test_each_job_gets_the_database_connection_a_request_would(tasks):
    """CONN_MAX_AGE 0: Django closes a connection at the end of a request; a
    worker thread's connection is closed at the end of each job likewise."""
    jobs = [tasks.connection_was_closed.enqueue() for _ in range(3)]
    asyncio.run(Worker(tasks.app, ["default"], burst=True, concurrency=1).run())
    assert [job.result(timeout=0) for job in jobs] == [True, True, True]


def test_testing_mode_runs_the_job_at_the_captured_commit(tasks, site):
    """Inside a TestCase's transaction, captureOnCommitCallbacks(execute=True)
    runs the enqueue, and testing mode the job, inline, in that transaction."""
    from contact.models import Message
    from django.db import transaction
    from django.test import TestCase

    with tasks.app.testing(), transaction.atomic():
        message = Message.objects.create(name="Caio", email="caio@example.com", body="ola")
        with TestCase.captureOnCommitCallbacks(execute=True) as callbacks:
            job = tasks.send_confirmation.enqueue_on_commit(message.pk)
            with pytest.raises(JobNotFound):  # not before the commit
                job.status  # noqa: B018
        assert len(callbacks) == 1
        assert job.result(timeout=0) == "caio@example.com"
        message.refresh_from_db()
        assert message.confirmed_at is not None
        transaction.set_rollback(True)


def test_a_missing_or_wrong_setting_is_named(site):
    from django.core.exceptions import ImproperlyConfigured
    from django.test import override_settings

    from tarefa.contrib.django.settings import project_app

    load = project_app.__wrapped__  # (the cached one is the project's)
    with override_settings(TAREFA=None), pytest.raises(ImproperlyConfigured, match="TAREFA"):
        load()
    with (
        override_settings(TAREFA={"APP": "contact.nope:app"}),
        pytest.raises(ImproperlyConfigured, match=r'settings.TAREFA\["APP"\]'),
    ):
        load()


@pytest.fixture
def staff(site):
    from django.contrib.auth.models import User

    User.objects.filter(username="ops").delete()
    return User.objects.create_user("ops", password="s3cret-pass", is_staff=True)


def test_the_dashboard_in_the_urlconf_is_for_staff_only(tasks, staff):
    from django.contrib.auth.models import User
    from django.test import Client

    tasks.send_confirmation.enqueue(1)
    visitor = Client()
    refused = visitor.get("/admin/queues/api/v1/queues")
    assert refused.status_code == 302 and "/admin/login/" in refused["location"]
    health = visitor.get("/admin/queues/api/v1/health")  # a load balancer's, without login
    assert health.status_code == 503 and health.json()["ok"] is False, health.json()
    User.objects.filter(username="ann").delete()
    visitor.force_login(User.objects.create_user("ann", password="x", is_staff=False))
    assert visitor.get("/admin/queues/api/v1/queues").status_code == 302  # not staff

    ops = Client()
    ops.force_login(staff)
    (emails,) = ops.get("/admin/queues/api/v1/queues").json()
    assert emails["name"] == "emails" and emails["counts"]["queued"] == 1
    assert "<title>tarefa</title>" in ops.get("/admin/queues/").content.decode()
    assert ops.get("/admin/queues/static/app.js").status_code == 200
    assert ops.post("/admin/queues/api/v1/queues/emails/pause").status_code == 200
    assert tasks.app.queue("emails").paused
    evil = {"HTTP_ORIGIN": "https://evil.example", "HTTP_SEC_FETCH_SITE": "cross-site"}
    assert ops.post("/admin/queues/api/v1/queues/emails/resume", **evil).status_code == 403
    assert tasks.app.queue("emails").paused
    body = {"args": {"message_id": 7}}
    created = ops.post(
        "/admin/queues/api/v1/tasks/contact.tasks:send_confirmation/jobs",
        body,
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    assert tasks.app.job(created.json()["id"]).status == JobState.QUEUED
    assert ops.get("/admin/queues/api/v1/jobs/nope").status_code == 404


@needs_chromium
def test_staff_log_in_and_use_the_dashboard_in_a_browser(tasks, staff, serve, page):
    """The project served by uvicorn as an ASGI app (Django's own handler):
    the admin's login page, then the dashboard."""
    from django.core.asgi import get_asgi_application
    from playwright.sync_api import expect

    tasks.send_confirmation.enqueue_many([(1,), (2,)])
    root = serve(get_asgi_application())
    page.goto(root + "admin/queues/")
    page.fill("#id_username", "ops")
    page.fill("#id_password", "s3cret-pass")
    page.click("input[type=submit]")
    expect(page.locator('tr[data-queue="emails"] td').nth(1)).to_have_text("2")


WRITE_THROUGH_THE_OUTBOX = """
import json
from django.db import connection, transaction
from tarefa import outbox
from contact.models import Message
from contact.tasks import send_confirmation

with transaction.atomic():
    message = Message.objects.create(name="Cleo", email="cleo@example.com", body="hi")
    kept = outbox.enqueue(connection, send_confirmation, message.pk)
try:
    with transaction.atomic():
        message = Message.objects.create(name="Dan", email="dan@example.com", body="hi")
        dropped = outbox.enqueue(connection, send_confirmation, message.pk)
        raise RuntimeError("the upload failed: rolled back")
except RuntimeError:
    pass
print(json.dumps({"kept": kept.id, "dropped": dropped.id}))
"""


def test_the_outbox_on_djangos_postgresql_connection_sends_only_committed_jobs(
    site, tasks, postgres, tmp_path
):
    """Django's ORM connection to PostgreSQL: the message and its job are
    written in one transaction; ``manage.py tarefa relay --install`` creates
    the outbox table and sends what was committed; the worker sends the mail."""
    import psycopg

    with psycopg.connect(postgres.url, autocommit=True) as db:
        db.execute("DROP DATABASE IF EXISTS contact")
        db.execute("CREATE DATABASE contact")
    url = postgres.url.rsplit("/", 1)[0] + "/contact"
    env = {"CONTACT_POSTGRES": url, "CONTACT_MAIL_DIR": str(tmp_path / "sent")}
    migrated = manage(site, "migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    log = open(tmp_path / "relay.log", "w")
    relay = subprocess.Popen(
        [sys.executable, "manage.py", "tarefa", "relay", "--install", "--database-url", url],
        cwd=PROJECT, env=project_env(env), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        with psycopg.connect(url, autocommit=True) as db:  # --install made the table
            wait_until(lambda: db.execute("SELECT to_regclass('tarefa_outbox')").fetchone()[0])
        wrote = manage(site, "shell", "-c", WRITE_THROUGH_THE_OUTBOX, env=env)
        assert wrote.returncode == 0, wrote.stderr
        ids = json.loads(wrote.stdout.splitlines()[-1])
        wait_until(lambda: tasks.app.backend.job("emails", ids["kept"]) is not None)
        worker = manage(site, "tarefa", "worker", "--burst", "-q", "emails", env=env)
        assert worker.returncode == 0, worker.stderr
    finally:
        relay.terminate()
        relay.wait(PATIENCE)
    assert tasks.app.job(ids["kept"]).result(timeout=0) == "cleo@example.com"
    assert tasks.app.backend.job("emails", ids["dropped"]) is None
    (mail,) = (tmp_path / "sent").iterdir()
    assert "Hello Cleo" in mail.read_text()
    with psycopg.connect(url) as db:
        assert db.execute("SELECT count(*) FROM tarefa_outbox").fetchone()[0] == 0
