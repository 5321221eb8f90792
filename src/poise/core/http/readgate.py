"""Why reading from a connection is paused (issue 12): a set of reasons as bit flags.

Reading pauses when the first reason comes and resumes only when the last one goes, so two
overlapping reasons (a pipelined request waiting its turn while the server connection is
also full) cannot resume reading early. The shell asks the gate and calls the transport's
pause_reading/resume_reading only when the gate says so. Pure: no I/O.
"""

from __future__ import annotations

# The reasons reading from the client stops (HttpSession, net/http.py).
PIPELINED = 1  # the next request's bytes wait for this transaction, over a head's worth
SERVER_FULL = 2  # the server connection's write buffer is over its high-water mark
CONNECTING = 4  # request bytes buffered while the server connection opens, over the limit
# Every reason that belongs to one transaction: all go when it ends (the server connection
# is released, so its resume_writing would not reach the session).
TRANSACTION = PIPELINED | SERVER_FULL | CONNECTING


class ReadGate:
    """The reasons reading is paused for, none at first.

    No __init__ and no __slots__: every client connection makes one, and a class whose
    instances start from the class attribute is made without running any Python code
    (bench/instructions.py: the Python __init__ cost 0.3% of a `Connection: close`
    request)."""

    reasons = 0

    def pause(self, reason: int) -> bool:
        """Add `reason`; True when reading must pause now (no reason held it before)."""
        before = self.reasons
        self.reasons = before | reason
        return not before

    def resume(self, reasons: int) -> bool:
        """Drop `reasons`; True when reading must resume now (they were the last)."""
        before = self.reasons
        if not before & reasons:
            return False
        self.reasons = after = before & ~reasons
        return not after

    @property
    def paused(self) -> bool:
        return self.reasons != 0
