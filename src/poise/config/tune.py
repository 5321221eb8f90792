"""HAProxy 2.6's fixed limits and the defaults of the limits a configuration cannot change
in poise (it has no `tune.bufsize` or `tune.maxrewrite`, so HAProxy's defaults hold), and
the default `len` of a `log` line: one place for each number, which every limit derived
from them reads.
"""

from __future__ import annotations

# configuration.txt 3.2: "tune.bufsize <number> ... The default value is 16384". A request
# head, a stats command and what a health check reads of a response each fit in one buffer.
BUFSIZE = 16384
# configuration.txt 3.2: "tune.maxrewrite <number> ... default is 1024": the part of a
# buffer kept free for rewriting, so a request head or a command line gets the rest.
MAXREWRITE = 1024
# configuration.txt 4.2 "log": "len <length> ... The default value is 1024".
LOG_LENGTH = 1024
# configuration.txt 5.2 "weight": "The default weight is 1, and the maximal value is 256"
# (SRV_UWGHT_MAX), for a server line, `set weight` and `add server` alike.
SERVER_WEIGHT_MAX = 256
