"""``python -m tests.faults.skewed SECONDS worker APP ...``: ``tarefa`` in a
process whose wall clock is off by SECONDS (time.time, time.time_ns), like a
worker host whose NTP is broken."""

import sys
import time

shift = float(sys.argv.pop(1))
real_time, real_time_ns = time.time, time.time_ns
time.time = lambda: real_time() + shift
time.time_ns = lambda: real_time_ns() + int(shift * 1e9)

from tarefa.cli import main  # noqa: E402 - after the clock is set

sys.argv[0] = "tarefa"
main()
