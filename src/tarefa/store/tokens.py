"""Lease tokens: the number each attempt of a job holds while it runs, which
fences it. Its heartbeats, progress and outcome count only while the job's
hash still holds its token; a newer attempt (the lease ran out and another
worker took the job, or the job was deleted and enqueued again) holds another.

Tokens are drawn at random, not counted in Redis: replication is asynchronous,
so a replica promoted after its master died lacks the master's last writes,
and a counter there would hand out again the tokens of leases it never saw, to
new attempts of jobs whose old attempts still run. A random token repeats only
by chance: one in 9 * 10^12 for each attempt that starts while another of the
same job still runs.

The token stays a whole number of 13 digits, well below 10^14: Lua 5.1 prints
a number with %.14g, and the scripts of tarefa 0.1.0 (whose workers run beside
these ones during a rolling deploy) do arithmetic on it (``HINCRBY lease 1``,
``tonumber(lease) + 1``). That release's tokens come from a counter, far below
these.
"""

from __future__ import annotations

import secrets

TOKEN_MIN = 10**12  # above any counted token of tarefa 0.1.0
TOKEN_SPAN = 9 * 10**12  # bases drawn from [10^12, 10^13)


def token_base() -> int:
    """The base of one fetch's tokens: its i-th job leased gets base + i."""
    return TOKEN_MIN + secrets.randbelow(TOKEN_SPAN)
