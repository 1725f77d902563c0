from .tasks import add, async_add


def test_enqueue_and_run(app, run_worker):
    job = add.enqueue(2, 3)
    ajob = async_add.enqueue(4, 5)
    run_worker()
    assert job.result(timeout=5) == 5
    assert ajob.result(timeout=5) == 9
