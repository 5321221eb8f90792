"""Runtime commands with several workers (`nbthread N`, issue 17): the worker that answers
a command that changes state (admin/commands.py SHARED: `set server`, `disable frontend`,
`set map`...) sends its line to the others (kind "cli"), and each of them runs it as a
client of the same level would, without answering and without logging (the worker that
answered logged it), and carries out its effects on its own sessions and listeners. A
command that fails changes nothing, on any worker.
"""

from __future__ import annotations

from poise.admin import commands
from poise.core.backend import start
from poise.net.admin_socket import AdminInfo, AdminService
from poise.net.context import Context
from poise.net.siblings import Payload

__all__ = ["CLI", "follow_commands"]

CLI = "cli"  # the kind net/admin_socket.py broadcasts


class Follower:
    """Runs the state-changing commands another worker answered."""

    def __init__(self, ctx: Context, info: AdminInfo) -> None:
        self.service = AdminService(ctx, info, 0)

    def heard(self, message: Payload) -> None:
        line, payload, level = message.get("line"), message.get("payload"), message.get("level")
        if not isinstance(line, str) or not commands.shared(line):
            return
        if payload is not None and not isinstance(payload, str):
            return
        if not isinstance(level, int) or level not in {int(value) for value in commands.Level}:
            return
        session = commands.Session(commands.Level(level))
        answer = commands.execute(commands.Command(line, payload), session, self.service.view())
        start(list(answer.goes))
        for effect in answer.effects:
            if not isinstance(effect, commands.Notice):  # logged by the worker that answered
                self.service.apply(effect)


def follow_commands(ctx: Context, info: AdminInfo) -> None:
    """With several workers: run the commands the others answer."""
    if ctx.siblings.count > 1:
        ctx.siblings.serve(CLI, Follower(ctx, info).heard)
