"""The dashboard as someone reads it, in a real headless Chromium over a real
Redis (conftest): refreshes that leave alone what the reader selected or
scrolled to, a plain not-found page, local times, the scheduled and active
lists, search, bulk actions, the workers' running jobs, a phone's width and the
favicon. Screenshots go to ``test-artifacts/dashboard/``."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from tarefa import JobState

from ..tasks import add, always_fails, hold_at, record
from ..waits import PATIENCE, wait_for_list, wait_until
from .conftest import SHOTS, UTC_OFFSET_HOURS, needs_chromium
from .test_dashboard import made_up_day

pytestmark = needs_chromium
WAIT_MS = PATIENCE * 1000


def wait_refreshes(page, count: int = 2, counter: str = "refreshes") -> None:
    """Wait until the page has refreshed ``count`` more times (its own counters)."""
    now = int(page.evaluate(f"document.body.dataset.{counter} || 0"))
    page.wait_for_function(
        f"Number(document.body.dataset.{counter} || 0) >= {now + count}", timeout=WAIT_MS
    )


def test_refreshes_keep_a_selected_traceback_and_the_scroll(server, page, drain):
    from playwright.sync_api import expect

    failed = always_fails.with_options(retries=0).enqueue("copy me")
    drain()
    page.set_viewport_size({"width": 1280, "height": 400})  # the page scrolls
    page.goto(server + f"#/jobs/{failed.id}")
    traceback = page.locator("pre.traceback")
    expect(traceback).to_contain_text("ValueError: copy me")
    # Select the traceback as a reader would, to copy it.
    page.evaluate("""() => {
        const pre = document.querySelector("pre.traceback");
        pre.marked = true;  // the same element, if the refreshes keep it
        const range = document.createRange();
        range.selectNodeContents(pre);
        getSelection().removeAllRanges();
        getSelection().addRange(range);
    }""")
    wait_refreshes(page)
    assert "ValueError: copy me" in page.evaluate("getSelection().toString()")
    assert page.evaluate('document.querySelector("pre.traceback").marked') is True
    page.screenshot(path=SHOTS / "traceback-selected.png")

    # Nothing selected: the page is drawn again, and stays where it was scrolled.
    page.evaluate("getSelection().removeAllRanges()")
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    scrolled = page.evaluate("window.scrollY")
    assert scrolled > 0
    wait_refreshes(page, counter="drawn")
    assert page.evaluate("window.scrollY") == scrolled
    assert page.evaluate('document.querySelector("pre.traceback").marked') is True


def test_an_unknown_job_queue_or_page_says_not_found(server, page, app, drain):
    from playwright.sync_api import expect

    add.enqueue(1, 1)
    drain()
    page.goto(server)
    expect(page.locator('tr[data-queue="default"]')).to_be_visible()
    not_found = page.locator('[data-view="not-found"]')
    for path, message in [
        ("#/jobs/nope", "No job 'nope'."),
        ("#/queues/nope", "No queue 'nope'."),
        ("#/jobs/nope?queue=default", "No job 'nope' in queue 'default'."),
        ("#/nothing", "No page #/nothing."),
    ]:
        page.goto(server)
        expect(page.locator('tr[data-queue="default"]')).to_be_visible()
        page.goto(server + path)
        expect(not_found.locator("h1")).to_have_text("Not found")
        expect(not_found).to_contain_text(message)
        expect(page.locator('tr[data-queue="default"]')).to_have_count(0)  # the page before
        if path == "#/jobs/nope":
            page.screenshot(path=SHOTS / "not-found.png")
    page.get_by_role("link", name="All queues").click()
    expect(page.locator('tr[data-queue="default"]')).to_be_visible()


LOCAL = re.compile(r"^(\d{4}-\d\d-\d\d )?(\d\d):(\d\d):(\d\d)(\.\d{3})? local$")


def check_local(time_element) -> None:
    """A <time>'s text is its datetime in the browser's zone, labelled, and its
    title the same time in UTC."""
    at = datetime.fromisoformat(time_element.get_attribute("datetime"))
    shown = LOCAL.fullmatch(time_element.inner_text())
    assert shown, time_element.inner_text()
    local = at + timedelta(hours=UTC_OFFSET_HOURS)
    assert tuple(map(int, shown.groups()[1:4])) == (local.hour, local.minute, local.second)
    assert time_element.get_attribute("title").startswith(at.strftime("%Y-%m-%d %H:%M:%S"))
    assert time_element.get_attribute("title").endswith(" UTC")


def test_times_are_local_and_labelled_with_utc_on_hover(server, page, drain):
    from playwright.sync_api import expect

    job = add.enqueue(1, 2)
    drain()
    page.goto(server + "#/queues/default?state=completed")
    row = page.locator(f'tr[data-job="{job.id}"]')
    expect(row.locator("time")).to_have_count(2)  # enqueued, finished
    for element in row.locator("time").all():
        check_local(element)
    expect(page.locator("#status")).to_have_text(re.compile(r"^updated \d\d:\d\d:\d\d local$"))

    page.goto(server + f"#/jobs/{job.id}")
    expect(page.locator("ol.timeline time")).to_have_count(3)
    times = page.locator("main time").all()
    assert len(times) == 6  # enqueued, started, finished; the timeline's three
    for element in times:
        check_local(element)
    page.screenshot(path=SHOTS / "job-local-times.png", full_page=True)


def test_scheduled_jobs_show_when_they_run_and_run_now(server, page, app):
    from playwright.sync_api import expect

    later = add.with_options(delay=300).enqueue(1, 1)
    other = add.with_options(delay=3600).enqueue(2, 2)
    page.goto(server + "#/queues/default?state=scheduled")
    row = page.locator(f'tr[data-job="{later.id}"]')
    expect(row).to_contain_text(re.compile(r"\d\d:\d\d:\d\d local in [45] min"))
    check_local(row.locator("time").first)
    expect(page.locator(f'tr[data-job="{other.id}"]')).to_contain_text("in 60 min")
    page.screenshot(path=SHOTS / "scheduled.png", full_page=True)

    row.get_by_role("button", name="Run now").click()
    expect(page.locator("#toast")).to_have_text("run-now: done")
    expect(row).to_have_count(0)
    assert later.status is JobState.QUEUED and other.status is JobState.SCHEDULED


def test_running_jobs_show_progress_and_their_worker(server, page, app, r, spawn_worker):
    from playwright.sync_api import expect

    job = hold_at.enqueue("bar", 0.4)
    spawn_worker("-c", "2")
    wait_for_list(r, "test:started", 1)
    worker = wait_until(lambda: job.info().worker, "the job's worker")
    page.goto(server + "#/queues/default?state=active")
    row = page.locator(f'tr[data-job="{job.id}"]')
    expect(row.locator('.progress[aria-valuenow="40"]')).to_be_visible()
    expect(row).to_contain_text("40% halfway")
    page.screenshot(path=SHOTS / "active-progress.png", full_page=True)

    page.goto(server + "#/workers")
    running = page.locator(f'tr[data-running-on="{worker}"] li[data-running="{job.id}"]')
    expect(running).to_contain_text("tests.tasks:hold_at")
    expect(running).to_contain_text(re.compile(r"since \d\d:\d\d:\d\d local"))
    check_local(running.locator("time"))
    page.screenshot(path=SHOTS / "workers-running.png", full_page=True)
    r.rpush("test:release:bar", 1)
    assert job.result(timeout=PATIENCE) == "bar"
    expect(running).to_have_count(0)


def test_selected_jobs_are_retried_cancelled_or_deleted_together(server, page, app, drain):
    from playwright.sync_api import expect

    failed = [always_fails.with_options(retries=0).enqueue(f"bulk {i}") for i in range(3)]
    drain()
    page.goto(server + "#/queues/default?state=failed")
    expect(page.locator("tr[data-job]")).to_have_count(3)
    page.get_by_label("select all").check()
    expect(page.locator("[data-picked]")).to_have_text("3 selected")
    wait_refreshes(page, counter="drawn")  # the choice outlives refreshes
    expect(page.locator("input[data-pick]:checked")).to_have_count(3)
    page.screenshot(path=SHOTS / "bulk-selected.png", full_page=True)
    page.get_by_role("button", name="Retry selected").click()
    expect(page.locator("#toast")).to_have_text("retry: 3 done")
    assert all(job.status is JobState.QUEUED for job in failed)
    expect(page.locator("[data-picked]")).to_have_text("0 selected")

    later = [add.with_options(delay=600).enqueue(i, i) for i in range(3)]
    page.goto(server + "#/queues/default?state=scheduled")
    page.get_by_label(f"select {later[0].id}").check()
    page.get_by_label(f"select {later[2].id}").check()
    page.get_by_role("button", name="Cancel selected").click()
    expect(page.locator("#toast")).to_have_text("cancel: 2 done")
    statuses = [job.status for job in later]
    assert statuses == [JobState.CANCELLED, JobState.SCHEDULED, JobState.CANCELLED]

    page.get_by_label(f"select {later[1].id}").check()
    page.get_by_role("button", name="Delete selected").click()  # the confirm() is accepted
    expect(page.locator("#toast")).to_have_text("delete: 1 done")
    assert app.queue("default").counts()["scheduled"] == 0


def test_a_queues_lists_are_searched_by_id_task_or_argument(server, page, app):
    from playwright.sync_api import expect

    wanted = record.enqueue("customer cus_42 paid")
    record.enqueue("customer cus_7 paid")
    add.enqueue(1, 1)
    later = record.with_options(delay=600).enqueue("cus_42 reminder")
    page.goto(server + "#/queues/default")
    expect(page.locator("tr[data-job]")).to_have_count(3)
    box = page.get_by_label("search jobs")
    box.fill("cus_4")  # typed, not yet sent: the refresh leaves it alone
    wait_refreshes(page)
    expect(box).to_have_value("cus_4")
    box.fill("cus_42")
    box.press("Enter")
    expect(page.locator("tr[data-job]")).to_have_count(1)
    expect(page.locator(f'tr[data-job="{wanted.id}"]')).to_be_visible()
    expect(page.locator(".muted").filter(has_text="job(s) matching")).to_contain_text(
        "1 queued job(s) matching “cus_42”"
    )
    wait_refreshes(page, counter="drawn")  # the search outlives refreshes
    expect(page.locator("tr[data-job]")).to_have_count(1)
    page.screenshot(path=SHOTS / "search.png", full_page=True)

    page.get_by_role("link", name=re.compile("^scheduled")).click()  # the search is kept
    expect(page.locator("tr[data-job]")).to_have_count(1)
    expect(page.locator(f'tr[data-job="{later.id}"]')).to_be_visible()
    page.get_by_label("search jobs").fill("tests.tasks:add")  # a task name
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".muted").filter(has_text="job(s) matching")).to_contain_text(
        "0 scheduled job(s)"
    )
    page.get_by_role("link", name=re.compile("^queued")).click()
    expect(page.locator("tr[data-job]")).to_have_count(1)
    expect(page.locator("tr[data-job]")).to_contain_text("tests.tasks:add")
    page.get_by_label("search jobs").fill("")  # cleared: every job again
    page.get_by_label("search jobs").press("Enter")
    expect(page.locator("tr[data-job]")).to_have_count(3)
    assert "search" not in page.evaluate("location.hash")


def test_a_phone_scrolls_tables_in_their_box_and_reads_the_chart(server, page, app, r, drain):
    from playwright.sync_api import expect

    for i in range(3):
        always_fails.with_options(retries=0, job_id=f"a-long-job-id-{i}-" + "x" * 40).enqueue(
            "a long error message that takes room " * 3
        )
    add.with_options(queue="a-queue-with-a-long-name").enqueue(1, 1)
    drain(["default", "a-queue-with-a-long-name"])
    made_up_day(r, app)  # a chart to draw
    page.set_viewport_size({"width": 375, "height": 740})
    for path, name in [
        ("", "phone-overview"),
        ("#/queues/default?state=failed", "phone-failed"),
        ("#/jobs/a-long-job-id-0-" + "x" * 40, "phone-job"),
        ("#/workers", "phone-workers"),
    ]:
        page.goto(server + path)
        expect(page.locator("main h1")).to_be_visible()
        expect(page.locator("main .table-box").first).to_be_visible()
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], (path, width)
        page.screenshot(path=SHOTS / f"{name}.png", full_page=True)
        if path == "":
            # The chart is drawn at the phone's width: its labels stay legible.
            heights = page.locator("svg.chart text.axis").evaluate_all(
                "texts => texts.map((t) => t.getBoundingClientRect().height)"
            )
            assert heights and min(heights) >= 10, heights
        if path.endswith("failed"):
            expect(page.locator("tr[data-job]")).to_have_count(3)
            box = page.locator("main .table-box")
            assert box.evaluate("b => b.scrollWidth > b.clientWidth")  # it scrolls, in its box


def test_the_page_has_a_favicon(server, page):
    page.goto(server)
    href = page.locator('link[rel="icon"]').get_attribute("href")
    response = page.request.get(server + href)
    assert response.status == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in response.body()
