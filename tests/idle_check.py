"""``python -m tests.idle_check SECONDS worker APP ...``: ``tarefa`` with the
idle worker's safety-net check every SECONDS instead of 5 s, so that a test
tells a worker woken as it should be (an enqueue, a due time, a recovery) from
one that only found its work at that check."""

import sys

from tarefa.worker import idle

idle.IDLE_CHECK = float(sys.argv.pop(1))  # read at each wait: in force from here on

from tarefa.cli import main  # noqa: E402 - after the check is set

sys.argv[0] = "tarefa"
main()
