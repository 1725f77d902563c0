"""tarefa in a Django project: add ``"tarefa.contrib.django"`` to
INSTALLED_APPS and name the project's App in settings::

    TAREFA = {"APP": "shop.tasks:app"}

Then ``send_email.enqueue_on_commit(...)`` enqueues once the transaction
commits (nothing on rollback); ``manage.py tarefa worker`` (every ``tarefa``
command) runs with Django set up; every job runs between database connection
checks, as a request does; and ``path("admin/queues/",
include("tarefa.contrib.django.urls"))`` serves the dashboard to staff.
"""
