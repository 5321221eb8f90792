"""Services poise answers itself inside an HTTP frontend, before any backend is chosen:
the stats page (`stats enable`, `stats uri`) and the Prometheus exporter
(`http-request use-service prometheus-exporter`). Each returns a complete response as a
rules.Verdict ("reply"), or None when the request is not for it.
"""

from __future__ import annotations

from poise.core.http import rules
from poise.core.http.message import Request
from poise.net.context import Context, FrontendRuntime


def serve(ctx: Context, frontend: FrontendRuntime, req: Request) -> rules.Verdict | None:
    """The answer of a service this request is for, or None (the usual case: nothing)."""
    return None
