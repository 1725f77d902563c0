"""Testing mode: jobs run inline, in the caller, with no Redis and no worker.

``App(testing=True)``, or ``with app.testing():``, puts an ``InlineStore``
where the App keeps its Redis store. Producers and job handles call it as they
call ``store.Store``, and it answers as Redis would: an enqueue has already gone
through the task's argument check and the serializer; the job then runs at once
through the worker's own ``execute()`` (decode, check, run, hooks, outcome),
and the outcome is recorded in memory as ``fetch.lua`` records it. So a test
sees what production would: a tuple arriving as a list, a result as stored, a
failure as ``JobFailed`` with the error's type, message and traceback.

What differs, because everything happens during the enqueue call:

- delays, ``at=``, priorities, queue limits and throttle or debounce windows
  are ignored: a job runs when it is enqueued (unless its queue is paused:
  then ``resume()`` runs the jobs waiting there);
- a retry runs at once, with no back-off (``on_retry`` is still told the delay
  a worker would have waited); cron schedules do not fire;
- a sync task runs in the caller's thread, with no event loop running (as in a
  worker's thread), so thread-locals such as a test's database connection are
  the caller's; its ``timeout`` cannot be enforced. An async task runs on the
  caller's loop (``aenqueue``) or on a fresh one (``enqueue`` from sync code);
  from inside a running loop it must be enqueued with ``aenqueue``;
- cancelling a job while it runs (from the job itself, or another thread) sets
  ``current_job().cancelled`` and discards its outcome; it does not interrupt it.

``store.py`` is the ``InlineStore``; ``inline.py`` runs a job's code in the
caller as a worker's thread or event loop would.
"""

from ..app import register_testing_backend
from .store import InlineStore

register_testing_backend(InlineStore)

__all__ = ["InlineStore"]
