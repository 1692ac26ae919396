"""How long a vanished peer of the PostgreSQL backend can go unnoticed, from one constant.

Both ends of a lock session derive their limits from :data:`DEAD_PEER_BOUND`: the
server ends a silent client's session (and its advisory locks) no sooner than that many
seconds after it last heard from it, and a holder gives its lock up at
:data:`HOLDER_BOUND`, half of it, after the last statement it sent that the server
answered. Between the two lie :data:`STOP_GRACE` for the holder's command to stop and a
SIGKILL's margin (docs/postgresql.md argues it). No psycopg here: the CLI
reads the grace without loading the driver.
"""

from __future__ import annotations

import os

#: Test-only: a smaller bound (seconds, a multiple of 5), so a network cut plays out in
#: seconds; every process of one test run must see the same value.
BOUND_ENV = "GITXACT_TEST_DEAD_PEER_BOUND"


def _bound() -> int:
    given = os.environ.get(BOUND_ENV, "")
    if given.isascii() and given.isdigit() and int(given) >= 5:
        return int(given) // 5 * 5
    return 25


#: Seconds after the last word from a vanished host that the server ends its session.
DEAD_PEER_BOUND = _bound()
#: TCP keepalives (both ends): idle, then probes apart, and their count; with
#: ``tcp_user_timeout`` = the bound they end a silent connection at exactly the bound.
KEEPALIVE_IDLE = DEAD_PEER_BOUND * 2 // 5
KEEPALIVE_INTERVAL = DEAD_PEER_BOUND // 5
KEEPALIVE_COUNT = 3
#: How often a holder confirms its session, and the server checks a waiter's socket (s).
CHECK_INTERVAL = DEAD_PEER_BOUND / 5
CHECK_INTERVAL_MS = int(CHECK_INTERVAL * 1000)
#: A holder that has had no answer to what it sent this long ago treats its lock as lost.
HOLDER_BOUND = DEAD_PEER_BOUND / 2
#: Between SIGTERM and SIGKILL of the command of a lock that was lost.
STOP_GRACE = DEAD_PEER_BOUND / 5
