"""The dashboard in a real headless Chromium (Debian's, driven by Playwright),
served by uvicorn on a free port (the ``server`` fixture), over a real Redis.
Screenshots go to ``test-artifacts/dashboard/``."""

from __future__ import annotations

import math
import re
from datetime import datetime

import pytest

from tarefa import JobState
from tarefa.store.keys import queue_keys

from ..tasks import add, always_fails, flaky
from .conftest import SHOTS, UTC_OFFSET_HOURS, needs_chromium

pytestmark = needs_chromium


def test_overview_shows_real_counts(server, page, drain):
    from playwright.sync_api import expect

    add.enqueue_many([(1, 1)] * 3)
    always_fails.with_options(queue="mail", retries=0).enqueue("smtp down")
    drain(["mail"])
    page.goto(server)
    default = page.locator('tr[data-queue="default"]')
    expect(default).to_contain_text("default")
    expect(default.locator("td").nth(1)).to_have_text("3")  # queued
    expect(page.locator('tr[data-queue="mail"] td').nth(6)).to_have_text("1")  # failed
    # default's jobs are ready and no worker serves it: said, not hidden.
    warning = page.locator('[data-unserved="default"]')
    expect(warning).to_contain_text("Queue default has jobs ready and no live worker serving it")
    expect(page.locator("[data-unserved]")).to_have_count(1)
    page.screenshot(path=SHOTS / "overview.png", full_page=True)


def test_retry_a_failed_job_and_see_it_run(server, page, app, drain):
    from playwright.sync_api import expect

    job = flaky.with_options(retries=0).enqueue("dashboard", 1)  # fails once, then succeeds
    drain()
    page.goto(server + "#/queues/default?state=failed")
    row = page.locator(f'tr[data-job="{job.id}"]')
    expect(row).to_contain_text("ConnectionError: failure 1")
    page.screenshot(path=SHOTS / "failed.png", full_page=True)

    row.get_by_role("button", name="Retry").click()
    expect(page.locator("#toast")).to_have_text("retry: done")
    expect(page.locator(f'tr[data-job="{job.id}"]')).to_have_count(0)  # not failed any more
    drain()
    page.goto(server + f"#/jobs/{job.id}?queue=default")
    expect(page.locator("td .state-completed")).to_have_text("completed")
    expect(page.locator("table")).to_contain_text("attempts")
    expect(page.locator("table")).to_contain_text("not kept once completed")  # its arguments
    page.screenshot(path=SHOTS / "job-completed.png", full_page=True)
    assert job.result(timeout=0) == 1  # its first attempt after the retry


def test_job_detail_shows_the_traceback_and_actions_change_state(server, page, app, drain):
    from playwright.sync_api import expect

    failed = always_fails.with_options(retries=0).enqueue("no such page")
    drain()
    page.goto(server + f"#/jobs/{failed.id}")
    expect(page.locator("pre.traceback")).to_contain_text("Traceback")
    expect(page.locator("table")).to_contain_text("no such page")
    page.screenshot(path=SHOTS / "job-failed.png", full_page=True)

    waiting = add.with_options(delay=600).enqueue(2, 2)
    page.goto(server + "#/queues/default?state=scheduled")
    page.locator(f'tr[data-job="{waiting.id}"]').get_by_role("button", name="Cancel").click()
    expect(page.locator("#toast")).to_have_text("cancel: done")
    assert waiting.status.value == "cancelled"
    page.get_by_role("link", name="cancelled", exact=True).click()  # listed, not counted
    expect(page.locator(f'tr[data-job="{waiting.id}"]')).to_contain_text("tests.tasks:add")
    summary = page.locator(".muted").filter(has_text="cancelled job(s)")
    expect(summary).to_contain_text("1 cancelled")

    page.get_by_role("button", name="Pause").click()
    expect(page.locator("h1")).to_have_text(re.compile(r"\(paused\)"))
    assert app.queue("default").paused
    page.get_by_role("button", name="Purge").click()  # the confirm() is accepted
    expect(page.locator("#toast")).to_have_text("purge: done")
    assert app.queue("default").counts()["failed"] == 0


def test_a_page_from_elsewhere_cannot_act(server, page):
    """A cross-site form post (CSRF) is refused; the job stays failed."""
    add.with_options(delay=600, job_id="target").enqueue(1, 1)
    page.set_content(
        f'<form method="post" action="{server}api/v1/jobs/target/cancel"></form>'
        "<script>document.forms[0].submit()</script>"
    )
    page.wait_for_load_state()
    assert "cross-site request refused" in page.content()
    assert add.app.job("target").status.value == "scheduled"


# Ids that are not one plain path segment: each must open, and be acted on,
# from a click in its queue's list.
ODD_IDS = ["a/b", "a%2Fb", "café ☕/日本", "a b", "a?b=c", "a#b", "x/cancel", "../queues", "%"]


def test_jobs_with_any_id_open_and_take_actions(server, page, app, drain):
    from playwright.sync_api import expect

    for job_id in ODD_IDS:
        always_fails.with_options(job_id=job_id, retries=0).enqueue("odd")
    drain()
    for job_id in ODD_IDS:
        page.goto(server + "#/queues/default?state=failed")
        page.get_by_role("link", name=job_id, exact=True).click()
        expect(page.locator("h1")).to_have_text(f"Job {job_id}")
        expect(page.locator("td .state-failed")).to_have_text("failed")
        if job_id == "a/b":
            page.screenshot(path=SHOTS / "job-odd-id.png", full_page=True)
        page.get_by_role("button", name="Retry").click()
        expect(page.locator("#toast")).to_have_text("retry: done")
        assert app.job(job_id).status is JobState.QUEUED
        page.get_by_role("button", name="Delete").click()  # the confirm() is accepted
        expect(page.locator("#toast")).to_have_text("delete: done")
    assert app.queue("default").counts()["queued"] == 0


def test_a_job_a_browser_cannot_ask_for_is_said_plainly(server, page, app, drain):
    """A browser drops "." and ".." from a URL's path, even percent-encoded:
    the page says so instead of asking for another path."""
    from playwright.sync_api import expect

    always_fails.with_options(job_id="..", retries=0).enqueue("odd")
    drain()
    page.goto(server + "#/queues/default?state=failed")
    page.get_by_role("link", name="..", exact=True).click()
    expect(page.locator("#status")).to_have_text(
        'a browser cannot send the job id ".." in a URL: use tarefa job'
    )
    page.goto(server + "#/queues/default?state=failed")
    page.locator("tr", has_text="ValueError: odd").get_by_role("button", name="Delete").click()
    expect(page.locator("#toast")).to_contain_text("a browser cannot send the job id")
    assert app.job("..").status is JobState.FAILED


# -- charts and totals ----------------------------------------------------------

MINUTE_MS = 60_000
# A bar's tooltip, e.g. "2024-05-01 09:34 local (12:34 UTC): 3 completed, 1
# failed, 0 retried" (the browser's zone is three hours behind UTC: conftest).
TITLE = re.compile(
    r"\d{4}-\d\d-\d\d (\d\d):(\d\d) local \((\d\d):(\d\d) UTC\): "
    r"([\d.]+) completed, ([\d.]+) failed, [\d.]+ retried"
)


def bar_sums(page) -> dict[str, float]:
    """The chart's bars summed per series, from their data-value attributes."""
    bars = page.locator("svg.chart rect.bar").evaluate_all(
        "bars => bars.map((bar) => [bar.dataset.series, Number(bar.dataset.value)])"
    )
    sums: dict[str, float] = {}
    for series, value in bars:
        sums[series] = sums.get(series, 0) + value
    return sums


def test_overview_shows_totals_and_a_chart_of_real_jobs(server, page, app, r, drain):
    from playwright.sync_api import expect

    # A copy of the totals one minute ago, as a worker takes once a minute:
    # the jobs below then count in a past minute, which the chart shows (the
    # current one shows once it is over). See test_metrics.
    for queue in ("default", "mail"):
        r.lpush(queue_keys(queue).history, f"{app.store.clock_ms() - MINUTE_MS} 0 0 0 0 0")
    add.enqueue_many([(1, 1)] * 3)
    always_fails.with_options(queue="mail", retries=0).enqueue("smtp down")
    drain(["default", "mail"])
    page.goto(server)
    for name, count in {"completed": 3, "failed": 1, "retried": 0, "enqueued": 4}.items():
        expect(page.locator(f'[data-total="{name}"] .value')).to_have_text(str(count))
    chart = page.locator("svg.chart")
    expect(chart.locator(".legend")).to_have_text(["completed", "failed", "retried"])
    expect(chart.locator("g.point")).to_have_count(60)  # a bar a minute, the last hour
    # The run may straddle a minute's turn: its jobs may be split over two bars.
    sums = bar_sums(page)
    assert sums["completed"] == pytest.approx(3, abs=0.15)
    assert sums["failed"] == pytest.approx(1, abs=0.15)
    assert "retried" not in sums
    # The tooltips of those bars give the same counts.
    titles = chart.locator("g.point:has(rect.bar) > title").all_text_contents()
    counts = [TITLE.fullmatch(title).groups() for title in titles]
    assert sum(float(c[4]) for c in counts) == pytest.approx(3, abs=0.15)
    assert sum(float(c[5]) for c in counts) == pytest.approx(1, abs=0.15)
    for hour, minute, utc_hour, utc_minute, *_ in counts:
        assert (int(hour) - UTC_OFFSET_HOURS) % 24 == int(utc_hour) and minute == utc_minute
    page.screenshot(path=SHOTS / "overview-chart.png", full_page=True)

    page.goto(server + "#/queues/mail")
    expect(page.locator("h1")).to_have_text("Queue mail")
    expect(page.locator('[data-total="failed"] .value')).to_have_text("1")
    expect(page.locator("svg.chart rect.bar").first).to_be_attached()
    assert set(bar_sums(page)) == {"failed"}


def made_up_day(r, app, queue: str = "default") -> None:
    """A day of the queue's history as workers would have recorded it, with
    the totals to match: a copy a minute for the last hour (tens of jobs a
    minute, a few failing or retried), every half hour before that."""
    now = app.store.clock_ms()
    completed = failed = retried = 0
    r.delete(queue_keys(queue).history)
    for ago in range(1440, 0, -1):
        completed += round(30 + 15 * math.sin(ago / 9) + ago % 7)
        failed += ago % 11 == 0
        retried += 2 * (ago % 5 == 0)
        if ago <= 60 or ago % 30 == 0:
            started = completed + failed + retried
            copy = [now - ago * MINUTE_MS, started, started, completed, failed, retried]
            r.lpush(queue_keys(queue).history, " ".join(map(str, copy)))  # newest first
    task = "tests.tasks:add"
    totals = {"enqueued": started, "started": started, "completed": completed}
    totals |= {"failed": failed, "retried": retried}
    r.hset(queue_keys(queue).stats, mapping={f"{event}|{task}": n for event, n in totals.items()})


def test_the_chart_shows_an_hour_or_a_day(server, page, app, r, drain):
    """The range is in the URL; a day is drawn as 10-minute bars. The first
    screenshot is the one in the README (docs/dashboard.png)."""
    from playwright.sync_api import expect

    add.enqueue(1, 1)  # the queue exists
    drain()
    made_up_day(r, app)
    page.goto(server)
    heading, points = page.locator(".panel h2"), page.locator("svg.chart g.point")
    expect(heading).to_have_text("Jobs per minute, last 1 h")
    expect(points).to_have_count(60)
    page.screenshot(path=SHOTS / "overview-hour.png")

    page.get_by_role("link", name="24 h").click()
    expect(page).to_have_url(re.compile(r"#/\?range=24h$"))
    expect(heading).to_have_text("Jobs per 10 minutes, last 24 h")
    # 1440 minutes cut at the clock's 10-minute marks: 145 bars unless the
    # first starts on a mark. Each bar's tooltip gives the minutes it spans.
    assert points.count() in (144, 145)
    expect(points.nth(1).locator("title")).to_have_text(
        re.compile(r"\d\d:\d0–\d\d:\d9 local \(\d\d:\d0–\d\d:\d9 UTC\): ")
    )
    page.screenshot(path=SHOTS / "overview-day.png", full_page=True)

    page.goto(server + "#/queues/default?state=completed&range=24h")
    expect(page.locator("h1")).to_have_text("Queue default")
    expect(page.locator(".panel")).to_have_attribute("data-range", "24h")
    expect(points).not_to_have_count(0)
    # Moving between a queue's tabs keeps the range.
    expect(page.get_by_role("link", name="failed (0)")).to_have_attribute(
        "href", re.compile(r"range=24h")
    )
    page.get_by_role("link", name="1 h").click()
    expect(page).to_have_url(re.compile(r"state=completed&offset=0&range=1h$"))
    expect(points).to_have_count(60)


def test_no_jobs_is_said_plainly(server, page):
    from playwright.sync_api import expect

    page.goto(server)
    expect(page.locator(".chart-empty")).to_have_text("No jobs in this period.")
    expect(page.locator("svg.chart")).to_have_count(0)
    expect(page.locator('[data-total="completed"] .value')).to_have_text("0")
    page.goto(server + "#/?range=24h")
    expect(page.locator(".panel")).to_have_attribute("data-range", "24h")
    expect(page.locator(".chart-empty")).to_have_text("No jobs in this period.")
    page.screenshot(path=SHOTS / "overview-empty.png", full_page=True)


# -- a job's timeline -----------------------------------------------------------


def shown_time(step) -> datetime:
    return datetime.fromisoformat(step.locator("time").get_attribute("datetime"))


def test_timeline_of_a_completed_job(server, page, app, drain):
    from playwright.sync_api import expect

    job = add.enqueue(2, 3)
    drain()
    page.goto(server + f"#/jobs/{job.id}?queue=default")
    steps = page.locator("ol.timeline li")
    expect(steps.locator(".step")).to_have_text(["enqueued", "started", "completed"])
    info = job.info()
    shown = [shown_time(steps.nth(i)) for i in range(3)]
    assert shown == [info.enqueued_at, info.started_at, info.finished_at]
    expect(steps.nth(1)).to_contain_text(re.compile(r"waited \d+ ms"))
    expect(steps.nth(1)).to_contain_text(f"attempt 1 on {info.worker}")
    expect(steps.nth(2)).to_contain_text(re.compile(r"ran \d+ ms"))
    page.screenshot(path=SHOTS / "job-timeline.png", full_page=True)


def test_timeline_of_a_retried_job_and_of_a_scheduled_one(server, page, app, drain):
    from playwright.sync_api import expect

    retried = flaky.enqueue("timeline", 1)  # fails once, runs again after its back-off
    drain()
    page.goto(server + f"#/jobs/{retried.id}?queue=default")
    steps = page.locator("ol.timeline li")
    expect(steps.locator(".step")).to_have_text(["enqueued", "ready", "started", "completed"])
    expect(steps.nth(1)).to_contain_text("a back-off ended")
    expect(steps.nth(2)).to_contain_text("attempt 2")

    later = add.with_options(delay=600).enqueue(1, 1)
    page.goto(server + f"#/jobs/{later.id}?queue=default")
    expect(steps.locator(".step")).to_have_text(["enqueued", "scheduled"])
    expect(steps.last).to_contain_text("waits for its time")
    expect(steps.last.locator("time")).to_have_count(0)  # a state, not an event


def test_clean_deletes_the_old_jobs_of_the_state_chosen(server, page, app, drain, r):
    from playwright.sync_api import expect

    k = queue_keys("default")
    old = add.enqueue_many([(i, 1) for i in range(3)])
    always_fails.with_options(retries=0).enqueue_many([("x",)] * 2)
    drain()
    for job in old:  # they ended two days ago
        ended_at = int(r.hget(k.job(job.id), "finished_at"))
        r.hset(k.job(job.id), "finished_at", ended_at - 2 * 86_400_000)
    add.enqueue(9, 9)
    drain()
    asked = []
    page.on("dialog", lambda dialog: asked.append(dialog.message))
    page.goto(server + "#/queues/default?state=completed")
    state, age = page.locator('[data-clean="state"]'), page.locator('[data-clean="age"]')
    expect(state).to_have_value("completed")  # the tab's state
    age.fill("1d")
    page.get_by_role("button", name="Clean").click()
    expect(page.locator("#toast")).to_have_text("clean: 3 completed job(s) deleted")
    assert asked == ["Delete the completed jobs of default that ended more than 1d ago?"]
    assert app.queue("default").counts()["completed"] == 1  # the one that just ended
    expect(page.get_by_role("link", name="completed (1)")).to_be_visible()

    age.fill("a week")  # not a duration: the API says why, nothing goes
    page.get_by_role("button", name="Clean").click()
    expect(page.locator("#toast")).to_contain_text("clean: Value error, older_than must be")
    state.select_option("failed")
    age.fill("0")
    page.screenshot(path=SHOTS / "clean.png", full_page=True)
    page.get_by_role("button", name="Clean").click()
    expect(page.locator("#toast")).to_have_text("clean: 2 failed job(s) deleted")
    assert app.queue("default").counts()["failed"] == 0
    assert state.input_value() == "failed" and age.input_value() == "0"  # kept across redraws
