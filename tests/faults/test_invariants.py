"""No job lost, none in two states: random sequences of the calls producers,
workers and operators make, against a real Redis, checked after every step
against a model of what each job must be (queue_model.py).

After every step:
- every job is in exactly the index its state names (its lane, the ready list
  or the prioritized zset when queued; scheduled, active, waiting, completed,
  failed), a cancelled one in none, and every index entry is a job in that
  state;
- the jobs that exist are the ones the model says exist (none lost, none come
  back), with the state, attempts, stalls and lease token it says;
- no lease is held twice: at most one attempt a worker holds matches an
  active job's token, and a lease has run out only when the test let it;
- Store.counts agrees with the indexes and the model (and manage.queue_info,
  every fifth step);
- the stats count each job added once and each job failed by stalls once.
Each call's reply is checked too: what a fetch leased, which outcomes it
discarded as stale, what a heartbeat reports lost, what cancel, retry,
delete and requeue answer.

Time is Redis's: a lease or delay meant to run out is 1 ms long, and the test
waits until Redis's clock has passed it (a lease of LEASE_MS never does).

The run is derandomized so CI sees the same sequences every time (about 20 s).
To search longer on your machine, with new sequences each run:

    TAREFA_INVARIANT_EXAMPLES=2000 TAREFA_INVARIANT_RANDOM=1 \
        pytest tests/faults/test_invariants.py -o timeout=0
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections import Counter

import orjson
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from tarefa import App, JobNotFound, manage
from tarefa.errors import WrongState
from tarefa.limits import QueueSettings
from tarefa.records import Added, AttemptOutcome, Enqueued, Outcome, OutcomeKind
from tarefa.store import Store
from tarefa.store.keys import job_ref, queue_keys
from tarefa.store.tokens import TOKEN_MIN

from .queue_model import DUE_MS, FAR_MS, FOREVER, QUEUE, UNENDED, Attempt, Job, QueueModel

K = queue_keys(QUEUE)
QUEUE_KEYS = K.job_prefix.removesuffix("job:") + "*"  # every key of the queue
LEASE_MS = 60_000  # a lease no example outlives: only the test's short leases run out
WORKERS = ("w1", "w2")
TASKS = ("t:a", "t:b")
IDS = tuple(f"j{i}" for i in range(6))  # few, so that ids are reused (de-duplication)
DELAYS = (0, 0, 0, DUE_MS, FAR_MS)
PRIORITIES = (0, 0, 1, 2)
KEYS = ("", "", "k1", "k2")
WINDOWS = ("", "", "", "throttle", "debounce")
KEPT = FAR_MS  # completed: kept FAR_MS + a serial number (see QueueModel.finish)
OUTCOMES = (
    ("completed", KEPT), ("completed", 0), ("completed", FOREVER),
    ("retry", 0), ("retry", DUE_MS), ("retry", FAR_MS), ("failed", 0),
)  # fmt: skip
RESULT, ERROR = b'"done"', b'{"type": "ValueError", "message": "no"}'

SETTINGS = settings(
    max_examples=int(os.environ.get("TAREFA_INVARIANT_EXAMPLES", "100")),
    stateful_step_count=int(os.environ.get("TAREFA_INVARIANT_STEPS", "50")),
    derandomize=not os.environ.get("TAREFA_INVARIANT_RANDOM"),
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# The cases a run must reach, so that it tests what it claims to (counted over
# all its examples; run with -s to see how often each, and finer ones, came).
CASES = (
    "enqueue: the id exists", "enqueue: kept throttle window", "enqueue: kept debounce window",
    "waiting job: its parent runs", "waiting job: its parent completed",
    "expired leases recovered", "a job failed by stalls",
    "a job failed by stalls, with dependants", "fetch: stale outcomes discarded",
    "fetch: ended jobs with dependants", "fetch: a key held back by its concurrency limit",
    "keep_completed: completed jobs dropped", "heartbeat: leases lost",
    "hand back: jobs requeued", "cancel: a job not ended", "retry: a failed job",
)  # fmt: skip
REACHED: Counter[str] = Counter()


def reached(case: str) -> None:
    REACHED[case] += 1


def test_no_job_is_lost_or_in_two_states(redis_url):
    REACHED.clear()
    run_state_machine_as_test(lambda: QueueMachine(redis_url), settings=SETTINGS)
    print(*sorted(REACHED.items()), sep="\n")
    missed = sorted(set(CASES) - set(REACHED))
    assert not missed, f"no example reached these cases (run more examples): {missed}"


def reply_of(done: Enqueued) -> int | bytes | list[bytes]:
    """An enqueue's record in the model's terms (enqueue.lua's own replies):
    1 when added, the state of the job holding the id, [id, state] of the
    job a window kept."""
    if done.added is Added.CREATED:
        return 1
    if done.added is Added.KEPT:
        return [done.job_id.encode(), (done.state or "").encode()]
    return (done.state or "").encode()


def answer(change) -> int | bytes:
    """A store's change to one job in the model's terms (the scripts' own
    replies): 1 when done, the job's state when refused, b"" when missing;
    False for a refused cancel (it says only that the job had ended)."""
    try:
        done = change()
    except JobNotFound:
        return b""
    except WrongState as refused:
        return refused.state.encode()
    return 1 if done in (True, None) else False


class QueueMachine(RuleBasedStateMachine):
    def __init__(self, url: str):
        super().__init__()
        self.store = Store(url)
        self.store.clients.sync.flushall()
        self.app = App(url=url)
        self.loop = asyncio.new_event_loop()
        self.running: dict[str, list[Attempt]] = {w: [] for w in WORKERS}
        self.serial = itertools.count()
        self.seen: set[str] = set()  # the fresh ids drawn
        self.checks = 0
        self.turns = itertools.count()  # the first worker's cycles (fetch_one)
        self.model: QueueModel | None = None
        self.settings = QueueSettings()
        self.keep_completed = 0

    def teardown(self):
        async def close():
            await self.store.clients.aio.aclose()

        self.loop.run_until_complete(close())
        self.loop.close()
        self.store.clients.close()
        self.app.close()

    # -- helpers --------------------------------------------------------------------------

    def call(self, coro):
        return self.loop.run_until_complete(coro)

    def payload(self) -> bytes:
        return orjson.dumps([[next(self.serial)], {}])

    def new_id(self, data, fresh: bool = False) -> str:
        """A new id, as Task.enqueue makes one, or one of the pool (a job_id
        given by the caller, maybe held by a job already)."""
        if fresh or data.draw(st.booleans(), label="new id"):
            job_id = f"n{next(self.serial)}"
            self.seen.add(job_id)
            return job_id
        return data.draw(st.sampled_from(IDS), label="id")

    def some_id(self, data, *states: str) -> str:
        """Mostly a job that exists, in one of ``states`` if given (a state
        first, so that a rare one is drawn too); else any id, of the pool or
        drawn before."""
        counts = Counter(job.state for job in self.model.jobs.values())
        # The rarest first: Hypothesis draws the first of a list most often.
        present = sorted((n, state) for state, n in counts.items() if not states or state in states)
        present = [state for _, state in present]
        if present and data.draw(st.integers(0, 3), label="existing") > 0:
            state = data.draw(st.sampled_from(present), label="state")
            ids = [job.id for job in self.model.in_state(state)]
            return data.draw(st.sampled_from(ids), label="id")
        return data.draw(st.sampled_from(sorted({*IDS, *self.seen})), label="id")

    def wait_for_clock(self, zset: str, ids) -> None:
        """Wait until Redis's clock reaches the jobs' scores (a due time, a
        lease's end, a millisecond away): the scripts judge time by that clock
        alone, so the test reads it (TIME) rather than sleeping."""
        scores = [self.store.clients.sync.zscore(zset, i) for i in ids]
        until = max((s for s in scores if s is not None), default=0)
        while self.store.clock_ms() < until:
            pass

    def outcome(self, data) -> tuple[str, int]:
        kind, ms = data.draw(st.sampled_from(OUTCOMES), label="outcome")
        return kind, self.kept_ms() if ms == KEPT else ms

    def kept_ms(self) -> int:
        return KEPT + next(self.serial)

    def made_due(self, ids) -> None:
        self.wait_for_clock(K.scheduled, ids)
        for job_id in ids:
            self.model.jobs[job_id].due = True

    # -- the queue's settings, one set per example (the App sets them in code) -----------------

    @initialize(
        key_concurrency=st.sampled_from((0, 1, 2)),
        keep_completed=st.sampled_from((0, 1)),
        max_stalls=st.sampled_from((0, 1)),
        jobs=st.integers(2, 6),
        data=st.data(),
    )
    def configure(self, key_concurrency, keep_completed, max_stalls, jobs, data):
        """The queue's settings, and a few jobs to start from."""
        self.model = QueueModel(key_concurrency, max_stalls)
        self.settings = QueueSettings.parse(
            key_concurrency=key_concurrency or None, keep_completed=keep_completed or None
        )
        self.keep_completed = keep_completed
        for _ in range(jobs):
            self.enqueue(data)

    # -- a step: one call of a producer, a worker or an operator -------------------------------

    # Each as often as it is named here. The first is drawn most (Hypothesis
    # draws the first of a list most often): a worker's plain cycle.
    CALLS = (
        "fetch_one", "fetch_one", "fetch", "fetch", "heartbeat", "worker_stops",
        "stale_outcome", "enqueue", "enqueue", "enqueue_many", "enqueue_waiting",
        "cancel", "retry_failed", "delete", "pause", "purge",
    )  # fmt: skip

    @rule(data=st.data())
    def step(self, data):
        """One rule that draws its call, rather than a rule per call: Hypothesis
        enables a random subset of a machine's rules in each example (swarm
        testing), and at this budget most examples would then miss the mix of
        calls the interesting states need (a lease that runs out and is
        recovered, a parent that ends with a job waiting for it, ...)."""
        getattr(self, data.draw(st.sampled_from(self.CALLS), label="call"))(data)

    # -- producers --------------------------------------------------------------------------

    def enqueue(self, data):
        task, payload = data.draw(st.sampled_from(TASKS)), self.payload()
        delay = data.draw(st.sampled_from(DELAYS), label="delay")
        priority = data.draw(st.sampled_from(PRIORITIES), label="priority")
        key = data.draw(st.sampled_from(KEYS), label="key")
        window = data.draw(st.sampled_from(WINDOWS), label="window")
        # A throttled or debounced job always gets a new id: the window picks
        # the job to keep, so it takes no job_id (options.dedupe_window).
        job_id = self.new_id(data, fresh=bool(window))
        per = f"{task}:{key}"  # what a window is per, as dedupe_window makes it
        expected = self.model.enqueue(job_id, task, payload, delay, priority, key, window, per)
        how = (window, FAR_MS, per) if window else ("", 0, "")
        fields = ["task", task, "payload", payload]
        reply = reply_of(self.store.enqueue(QUEUE, job_id, (delay, priority, key), fields, how))
        assert reply == expected
        if reply != 1:
            reached(f"enqueue: kept {window} window" if window else "enqueue: the id exists")
        if reply == 1 and delay == DUE_MS and window != "debounce":
            self.made_due([job_id])

    def enqueue_many(self, data):
        ids = [self.new_id(data) for _ in range(data.draw(st.integers(1, 4), label="n"))]
        task = data.draw(st.sampled_from(TASKS))
        when = (
            data.draw(st.sampled_from(DELAYS), label="delay"),
            data.draw(st.sampled_from(PRIORITIES), label="priority"),
            data.draw(st.sampled_from(KEYS), label="key"),
        )
        jobs = [(i, ["task", task, "payload", self.payload()]) for i in ids]
        expected = [self.model.add(i, task, fields[3], *when) for i, fields in jobs]
        assert [reply_of(done) for done in self.store.enqueue_many(QUEUE, when, jobs)] == expected
        if when[0] == DUE_MS:
            self.made_due([i for i, added in zip(ids, expected, strict=True) if added == 1])

    def enqueue_waiting(self, data):
        """Task.enqueue with depends_on: added waiting, then registered on its
        parent (or told at once that it has ended)."""
        parent = self.some_id(data, *UNENDED)  # else any id: ended, or missing
        child = self.new_id(data)
        if child == parent:
            return
        task, payload = data.draw(st.sampled_from(TASKS)), self.payload()
        priority = data.draw(st.sampled_from(PRIORITIES), label="priority")
        key = data.draw(st.sampled_from(KEYS), label="key")
        spec = {"takes_results": False, "parents": [job_ref(QUEUE, parent)]}
        fields = ["task", task, "payload", payload, "parents", orjson.dumps(spec)]
        expected = self.model.add(child, task, payload, 0, priority, key, waits=1)
        reply = reply_of(self.store.enqueue(QUEUE, child, (0, priority, key), fields, waits=1))
        assert reply == expected
        if reply == 1:
            ended = self.model.register(parent, child)
            reached(f"waiting job: its parent {ended or 'runs'}")
            if ended is not None:
                self.model.resolve(ended, [child])
            self.store.wait_for(job_ref(QUEUE, child), [job_ref(QUEUE, parent)])

    # -- workers ----------------------------------------------------------------------------

    def fetch_one(self, data):
        """The first worker reports its oldest attempt (completed, mostly) and
        takes one job (with a short lease, every third time): its outcomes and
        leases vary in turn rather than by drawing them."""
        turn = next(self.turns)
        oldest = self.running[WORKERS[0]][:1]
        kind = ("completed", "completed", "failed", "retry")[turn % 4]
        ms = self.kept_ms() if kind == "completed" else 0  # a retry due at once
        expired = sum(job.expired for job in self.model.in_state("active"))
        short = turn % 3 == 2 and expired < 10
        self.exchange(WORKERS[0], oldest, [(kind, ms) for _ in oldest], 1, short)

    def fetch(self, data):
        """A worker's exchange: the outcomes of some of the attempts it holds
        (current or not), then up to ``want`` new leases."""
        self.some_exchange(data)

    def some_exchange(self, data):
        worker = data.draw(st.sampled_from(WORKERS), label="worker")
        held = self.running[worker]
        reported = []
        if held:
            reported = data.draw(st.lists(st.sampled_from(held), unique_by=id, max_size=3))
        outcomes = [self.outcome(data) for _ in reported]
        want = data.draw(st.integers(0, 4), label="want")
        expired = sum(job.expired for job in self.model.in_state("active"))
        # A fetch recovers 10 expired leases at most: keep them fewer, so the
        # model knows which it recovers.
        short = expired + want <= 10 and data.draw(st.booleans(), label="short lease")
        self.exchange(worker, reported, outcomes, want, short)

    def exchange(self, worker, reported, outcomes, want, short=False) -> None:
        """One fetch, checked, then the worker tells the jobs waiting for the
        ones that ended (Worker._exchange)."""
        m, held = self.model, self.running[worker]
        # What the script must do: record the outcomes ...
        sent, stale, ended, retried_soon = [], [], [], []
        for attempt, (kind, ms) in zip(reported, outcomes, strict=True):
            value = RESULT if kind == "completed" else ERROR
            sent.append(
                AttemptOutcome(attempt.job_id, attempt.token, Outcome(OutcomeKind(kind), value, ms))
            )
            applied, told = m.finish(attempt, kind, ms)
            if not applied:
                stale.append(attempt.job_id)
            elif told:
                ended.append((attempt.job_id, kind, [job_ref(QUEUE, c) for c in told]))
            if applied and (kind, ms) == ("retry", DUE_MS):
                retried_soon.append(attempt.job_id)
            held.remove(attempt)
        # ... recover the expired leases and promote due jobs when it leases ...
        leasing = want > 0 and not m.paused
        recovered_ended = self.recover_expired()[1] if leasing else []
        if leasing:
            m.promote_due()
        queued = m.in_state("queued")
        plain = [j for j in queued if not j.key and not j.priority]
        by_priority = [j for j in queued if not j.key and j.priority]
        by_priority.sort(key=lambda j: j.priority)
        room = {key: m.lane_room(key) for key in {j.key for j in queued if j.key}}

        fetched = self.call(
            self.store.fetch(
                QUEUE, worker, want=want, lease_ms=1 if short else LEASE_MS,
                max_stalls=m.max_stalls, settings=self.settings, outcomes=sent,
            )
        )  # fmt: skip
        if m.keep_completed(self.keep_completed):
            reached("keep_completed: completed jobs dropped")
        assert fetched.stale == stale, "an outcome was recorded (or discarded) wrongly"
        assert fetched.lost == [], "a job found gone: tarefa itself left an id without its job"
        # the outcomes' first, then those of jobs failed by stalls (in no set order)
        assert fetched.ended[: len(ended)] == ended
        assert sorted(fetched.ended[len(ended) :]) == sorted(recovered_ended)
        if stale:
            reached("fetch: stale outcomes discarded")
        if ended:
            reached("fetch: ended jobs with dependants")

        # ... and lease what may start: plain jobs first, then keys' lanes, then by priority.
        taken, priorities = Counter(), []
        assert len({leased.id for leased in fetched.jobs}) == len(fetched.jobs)
        for leased in fetched.jobs:
            job = m.jobs.get(leased.id)
            assert job is not None and job.state == "queued", (
                f"{leased.id} leased while {job and job.state}: it would run twice"
            )
        first = int(fetched.jobs[0].token) if fetched.jobs else 0
        assert not fetched.jobs or TOKEN_MIN <= first < 10**13, "tokens: 13 digits"
        tokens = m.tokens(first, [m.jobs[leased.id] for leased in fetched.jobs])
        for leased, token in zip(fetched.jobs, tokens, strict=True):
            job = m.jobs[leased.id]
            assert (leased.attempts, leased.stalls) == (job.attempts + 1, job.stalls)
            assert leased.token == str(token).encode() and token != job.lease
            assert (leased.task, leased.payload) == (job.task, job.payload)
            taken[job.key or ("priority" if job.priority else "plain")] += 1
            if job.priority and not job.key:
                priorities.append(job.priority)
            attempt = Attempt(leased.id, leased.token, worker)
            m.lease(job, attempt)
            held.append(attempt)
        want = want if leasing else 0
        assert taken["plain"] == min(want, len(plain))
        from_lanes = sum(n for key, n in taken.items() if key not in ("plain", "priority"))
        assert from_lanes == min(want - taken["plain"], sum(room.values()))
        assert all(taken[key] <= n for key, n in room.items())
        if any(room[j.key] < len([k for k in queued if k.key == j.key]) for j in queued if j.key):
            reached("fetch: a key held back by its concurrency limit")
        assert taken["priority"] == min(want - taken["plain"] - from_lanes, len(by_priority))
        # The smallest priority numbers first.
        assert sorted(priorities) == [j.priority for j in by_priority[: len(priorities)]]
        assert fetched.active == len(m.in_state("active"))
        if fetched.jobs or m.paused or not m.in_state("scheduled"):
            assert fetched.next_due_ms == -1
        else:
            assert fetched.next_due_ms >= 0

        self.resolve(fetched.ended)
        if retried_soon:
            self.made_due(retried_soon)
        if short and fetched.jobs:
            self.wait_for_clock(K.active, [j.id for j in fetched.jobs])
            for leased in fetched.jobs:
                m.jobs[leased.id].expired = True

    def recover_expired(self) -> tuple[int, list]:
        """The model's recovery (a fetch's, or recover.lua's), with the jobs
        failed by stalls that others wait for, as the store gives them."""
        stalled_out = self.model.stalled_out.total()
        recovered, ended = self.model.recover_expired()
        if recovered:
            reached("expired leases recovered")
        if self.model.stalled_out.total() > stalled_out:
            reached("a job failed by stalls")
        if ended:
            reached("a job failed by stalls, with dependants")
        return recovered, [(i, o, [job_ref(QUEUE, c) for c in told]) for i, o, told in ended]

    def resolve(self, ended) -> None:
        """Tell the jobs waiting for those that ended, as the worker does."""
        for parent, outcome, children in ended:
            result = RESULT if outcome == "completed" else b""
            self.call(self.store.aresolve(job_ref(QUEUE, parent), outcome, result, children))
            self.model.resolve(outcome, [c.partition("|")[2] for c in children])

    def holding(self) -> bool:
        return any(self.running.values())

    def holder(self, data) -> str:
        return data.draw(st.sampled_from([w for w in WORKERS if self.running[w]]), label="worker")

    def heartbeat(self, data):
        """A worker's beat: renew its leases, then recover expired ones (a
        stall: back to ready, or failed after too many)."""
        worker = self.holder(data) if self.holding() else WORKERS[1]
        held = self.running[worker]
        if held:
            expected = self.model.heartbeat(held)
            leases = [(a.job_id, a.token) for a in held]
            lost = self.call(self.store.heartbeat(QUEUE, LEASE_MS, leases))
            assert [(loss.job_id, loss.token) for loss in lost] == expected
            if expected:
                reached("heartbeat: leases lost")
            # It stops the attempts it lost (stop_lost), and keeps the others.
            held[:] = [a for a in held if self.model.current(a)]
        count, ended = self.recover_expired()
        recovery = self.call(self.store.recover(QUEUE, max_stalls=self.model.max_stalls))
        assert (recovery.count, sorted(recovery.ended), recovery.lost) == (count, sorted(ended), [])
        self.resolve(recovery.ended)

    def worker_stops(self, data):
        """A worker stops: it hands back what it will not finish, or it is
        killed and its leases stay until they run out (a short one soon, a
        normal one after the example)."""
        if not self.holding():
            return
        held = self.running[self.holder(data)]
        if data.draw(st.booleans(), label="killed"):
            held.clear()
        else:
            self.hand_back(held, data)

    def hand_back(self, held: list[Attempt], data) -> None:
        """The grace period is over: requeue the jobs it still runs."""
        back = data.draw(st.lists(st.sampled_from(held), unique_by=id, min_size=1))
        expected = self.model.requeue(back)
        count = self.call(self.store.requeue(QUEUE, [(a.job_id, a.token) for a in back]))
        assert count == expected
        if count:
            reached("hand back: jobs requeued")
        held[:] = [a for a in held if a not in back]

    def stale_outcome(self, data):
        """An outcome with a lease token the job has moved past: discarded."""
        job = self.model.jobs.get(self.some_id(data))
        if job is None or job.lease == 0:
            return
        # Any token but the current attempt's: one the job held before, or any other.
        past = [job.lease - 1] if job.state == "active" else [job.lease, job.lease - 1]
        drawn = data.draw(st.sampled_from(past) | st.integers(0, 10**14 - 1), label="token")
        if job.state == "active" and drawn == job.lease:
            drawn += 1
        token = str(drawn).encode()
        kind, ms = self.outcome(data)
        outcome = AttemptOutcome(job.id, token, Outcome(OutcomeKind(kind), ERROR, ms))
        fetched = self.call(
            self.store.fetch(QUEUE, "w3", want=0, lease_ms=LEASE_MS,
                             max_stalls=self.model.max_stalls, settings=self.settings,
                             outcomes=[outcome])
        )  # fmt: skip
        assert fetched.stale == [job.id]
        self.model.keep_completed(self.keep_completed)

    # -- operators --------------------------------------------------------------------------

    def cancel(self, data):
        job_id = self.some_id(data, *UNENDED)
        reached(f"cancel: a job {self.model.state(job_id).decode() or 'missing'}")
        expected = self.model.cancel(job_id)
        if expected == 1:
            reached("cancel: a job not ended")
        ended = expected not in (1, b"")  # the model says in which state
        assert answer(lambda: self.store.cancel(QUEUE, job_id, FAR_MS)) == (
            False if ended else expected
        )

    def retry_failed(self, data):
        job_id = self.some_id(data, "failed")
        expected = self.model.retry(job_id)
        assert answer(lambda: self.store.retry(QUEUE, job_id)) == expected
        if expected == 1:
            reached("retry: a failed job")

    def delete(self, data):
        ids = [self.some_id(data) for _ in range(data.draw(st.integers(1, 3), label="n"))]
        expected = self.model.delete(ids)
        assert self.store.delete(QUEUE, ids) == expected

    def pause(self, data):
        """Pause the queue: a worker's exchange records outcomes but leases
        nothing; then resume it. (In one step: as two calls drawn as often,
        pause and resume would leave the queue paused half the time.)"""
        self.store.pause(QUEUE)
        self.model.paused = True
        assert self.store.is_paused(QUEUE)
        self.check_now()
        self.some_exchange(data)
        self.check_now()
        assert self.store.resume(QUEUE) is True
        assert self.store.resume(QUEUE) is False  # it was not paused
        self.model.paused = False

    def purge(self, data):
        if len(self.model.jobs) >= 6:  # a busy queue
            self.store.purge(QUEUE)
            self.model.purge()

    # -- after every step -----------------------------------------------------------------------

    @invariant()
    def the_queue_is_what_the_model_says(self):
        if self.model is not None:
            self.check_now()

    def check_now(self) -> None:
        snap = Snapshot(self.store)
        snap.check_indexes()
        self.check_jobs(snap)
        self.check_leases(snap)
        self.check_lanes(snap)
        self.check_counts(snap)
        self.checks += 1
        if self.checks % 5 == 0:  # about ten round trips, of reads checked above
            self.check_queue_info()

    def check_jobs(self, snap: Snapshot) -> None:
        m = self.model
        lost = sorted(set(m.jobs) - set(snap.jobs))
        extra = sorted(set(snap.jobs) - set(m.jobs))
        assert not lost, f"jobs lost: {lost}"
        assert not extra, f"jobs that should not exist: {extra}"
        for job_id, job in m.jobs.items():
            h = snap.jobs[job_id]
            seen = {
                "state": h["state"], "attempts": int(h.get("attempts", 0)),
                "stalls": int(h.get("stalls", 0)), "lease": int(h.get("lease", 0)),
                "task": h["task"], "payload": h.get("payload", "").encode(),
                "priority": int(h.get("priority", 0)), "key": h.get("key", ""),
            }  # fmt: skip
            wanted = {
                "state": job.state, "attempts": job.attempts, "stalls": job.stalls,
                "lease": job.lease, "task": job.task, "payload": job.payload,
                "priority": job.priority, "key": job.key,
            }  # fmt: skip
            assert seen == wanted, f"job {job_id}"
            if job.state == "scheduled":
                assert (snap.scores["scheduled"][job_id] <= snap.now) == job.due, job_id
            if job.state == "completed":
                assert (snap.scores["completed"][job_id] == 1e15) == (job.expires[0] == 1)
            deps = snap.dependents.get(job_id, [])
            assert deps == [job_ref(QUEUE, c) for c in job.dependents], job_id
        assert set(snap.dependents) <= set(m.jobs), "a list of dependants outlived its job"

    def check_leases(self, snap: Snapshot) -> None:
        """A job runs once at a time: one holder of its current lease at most,
        and the lease runs out only when the test made it."""
        held = Counter((a.job_id, a.token) for attempts in self.running.values() for a in attempts)
        for job in self.model.in_state("active"):
            holders = held[job.id, str(job.lease).encode()]
            assert holders <= 1, f"{job.id}: {holders} workers hold its current lease"
            if job.attempt is not None and job.attempt in self.running[job.attempt.worker]:
                assert holders == 1
            assert (snap.scores["active"][job.id] <= snap.now) == job.expired, job.id

    def check_lanes(self, snap: Snapshot) -> None:
        m = self.model
        active = Counter(job.key for job in m.in_state("active") if job.key)
        assert snap.lane_active == dict(active), "lane_active counts the keys' active jobs"
        assert not snap.lanes_waiting  # no rate limits here
        for key, lane in snap.lanes.items():
            # A key with queued jobs has a turn, unless its running jobs hold
            # it back (the end of one gives it its turn again).
            if lane and key not in snap.lane_turns:
                assert m.key_concurrency and active[key] >= m.key_concurrency, (
                    f"lane {key} has jobs but no turn: they would never run"
                )

    def check_counts(self, snap: Snapshot) -> None:
        m = self.model
        counts = m.counts()
        assert snap.sizes() == counts
        assert self.store.counts(QUEUE) == counts
        assert snap.paused == m.paused
        stats = {f"enqueued|{t}": n for t, n in m.enqueued.items() if n}
        stats |= {f"failed|{t}": n for t, n in m.stalled_out.items() if n}
        assert snap.stats == stats

    def check_queue_info(self) -> None:
        """What an operator sees (the API, the dashboard, the CLI)."""
        m = self.model
        info = manage.queue_info(self.app, QUEUE)
        assert info["counts"] == m.counts()
        assert info["paused"] == m.paused
        assert info["totals"]["enqueued"] == sum(m.enqueued.values())
        assert info["totals"]["failed"] == sum(m.stalled_out.values())
        assert (info["oldest_ready_age"] is None) == (not m.in_state("queued"))


class Snapshot:
    """Every key of the queue, read at once (nothing else writes meanwhile)."""

    ZSETS = ("prioritized", "scheduled", "active", "completed", "failed", "waiting")

    def __init__(self, store: Store):
        client = store.clients.sync
        self.now = store.clock_ms()

        names = [k.decode() for k in client.scan_iter(QUEUE_KEYS, count=10_000)]

        def named(prefix: str) -> list[str]:  # what follows the prefix in the keys it begins
            return sorted(n.removeprefix(prefix) for n in names if n.startswith(prefix))

        ids, lanes, deps = named(K.job_prefix), named(K.lane_prefix), named(K.dependents_prefix)
        pipe = client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hgetall(K.job(job_id))
        for key in lanes:
            pipe.lrange(K.lane(key), 0, -1)
        for job_id in deps:
            pipe.lrange(K.dependents(job_id), 0, -1)
        pipe.lrange(K.ready, 0, -1)
        for name in self.ZSETS:
            pipe.zrange(getattr(K, name), 0, -1, withscores=True)
        pipe.zrange(K.lanes, 0, -1).zrange(K.lanes_waiting, 0, -1).hgetall(K.lane_active)
        pipe.exists(K.paused).hgetall(K.stats)
        replies = iter(pipe.execute())

        def text(raw: dict) -> dict[str, str]:
            return {k.decode(): v.decode() for k, v in raw.items()}

        self.jobs = {job_id: text(next(replies)) for job_id in ids}
        self.lanes = {key: decode(next(replies)) for key in lanes}
        self.dependents = {job_id: decode(next(replies)) for job_id in deps}
        self.ready = decode(next(replies))
        self.scores = {name: {m.decode(): s for m, s in next(replies)} for name in self.ZSETS}
        self.lane_turns = set(decode(next(replies)))
        self.lanes_waiting = decode(next(replies))
        self.lane_active = {k: int(v) for k, v in text(next(replies)).items()}
        self.paused = bool(next(replies))
        self.stats = {k: int(v) for k, v in text(next(replies)).items()}

    def check_indexes(self) -> None:
        """Each job in the one index its state names; each entry a job in that state."""
        where: dict[str, list[str]] = {}
        entries = [("ready", i) for i in self.ready]
        entries += [(f"lane:{key}", i) for key, lane in self.lanes.items() for i in lane]
        entries += [(name, i) for name, scores in self.scores.items() for i in scores]
        for index, job_id in entries:
            where.setdefault(job_id, []).append(index)
        for job_id, h in self.jobs.items():
            job = Job(job_id, "", b"", int(h.get("priority", 0)), h.get("key", ""), h["state"])
            found = where.pop(job_id, [])
            assert found == ([job.index] if job.index else []), f"{job_id} ({h['state']}): {found}"
        assert not where, f"index entries with no job: {where}"

    def sizes(self) -> dict[str, int]:
        queued = len(self.ready) + len(self.scores["prioritized"])
        queued += sum(map(len, self.lanes.values()))
        return {"queued": queued} | {
            name: len(self.scores[name])
            for name in ("waiting", "scheduled", "active", "completed", "failed")
        }


def decode(items) -> list[str]:
    return [item.decode() for item in items]
