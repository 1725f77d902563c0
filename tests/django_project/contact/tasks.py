"""The site's jobs."""

from django.core.mail import send_mail
from django.db import connection
from django.utils import timezone

from tarefa import App

from .models import Message

app = App()  # TAREFA_URL


@app.task(queue="emails", retries=3)
def send_confirmation(message_id: int) -> str:
    """The visitor's confirmation e-mail: the message must be in the database
    (it is: the job is enqueued once the transaction commits)."""
    message = Message.objects.get(pk=message_id)
    send_mail(
        "We got your message",
        f"Hello {message.name}, thank you for writing.",
        "site@example.com",
        [message.email],
    )
    Message.objects.filter(pk=message_id).update(confirmed_at=timezone.now())
    return message.email


@app.task
def connection_was_closed() -> bool:
    """Whether this thread's database connection was closed when the job
    began (CONN_MAX_AGE 0: after the job before it), then runs a query."""
    closed = connection.connection is None
    Message.objects.count()
    return closed
