"""`show peers [dict|-] [SECTION]` (management.txt 9.3), in HAProxy 2.6's layout (peers.c
peers_dump_head and peers_dump_peer): a line per section, then each peer, the last
declared first, with its status, timers and counters, the addresses of its session and
its shared tables. Addresses are made up (poise has no C structures to point at); the
fields of HAProxy's internals that poise has no equivalent of (flags, applet states, task
calls, update cursors) are printed as HAProxy prints them when idle. The dictionary cache
is not kept per peer in poise: `dict` lists it empty.
"""

from __future__ import annotations

from poise.admin.commands_base import Answer, Request
from poise.admin.commands_show import human_time
from poise.core.peers.state import SECTIONS, STATUS_NAMES, PeerState, SectionState

_BASE = 0x5600_0100_0000  # where the made-up addresses start


def cmd_show_peers(req: Request) -> Answer:
    args = list(req.args[2:])
    dump_dict = False
    if args[:1] == ["dict"]:
        dump_dict = True
        args.pop(0)
    elif args[:1] == ["-"]:
        args.pop(0)
    sections = SECTIONS
    if args and args[0]:
        sections = [s for s in SECTIONS if s.name == args[0]]
        if not sections:
            return Answer("No such peers\n")
    now = req.view.now
    blocks = [section_text(s, n, now, dump_dict) for n, s in enumerate(sections)]
    return Answer("\n".join(blocks))


def _timer(when: float | None, now: float) -> str:
    if when is None:
        return "<NEVER>"
    return "<PAST>" if when <= now else human_time(when - now)


def section_text(section: SectionState, number: int, now: float, dump_dict: bool) -> str:
    lines = [
        f"0x{_BASE + number * 0x10000:x}: [{section.since}] id={section.name} "
        f"disabled={int(section.disabled)} flags=0x0 resync_timeout=<NEVER> task_calls=0\n"
    ]
    for index, peer in enumerate(reversed(section.peers)):
        address = _BASE + number * 0x10000 + (index + 1) * 0x400
        lines.append(peer_text(section, peer, address, now, dump_dict))
    return "".join(lines)


def peer_text(
    section: SectionState, peer: PeerState, address: int, now: float, dump_dict: bool
) -> str:
    where = "local" if peer.local else "remote"
    state = "active" if peer.active else "inactive"
    shaken = "<NEVER>" if peer.last_handshake is None else human_time(now - peer.last_handshake)
    out = [
        f"  0x{address:x}: id={peer.name}({where},{state}) addr={peer.address} "
        f"last_status={STATUS_NAMES.get(peer.status, 'NONE')} last_hdshk={shaken}\n",
        f"        reconnect={_timer(peer.reconnect, now)} heartbeat={_timer(peer.heartbeat, now)}"
        f" confirm=0 tx_hbt={peer.tx_hbt} rx_hbt={peer.rx_hbt} no_hbt=0 "
        f"new_conn={peer.new_conn} proto_err={peer.proto_err} coll={peer.coll}\n",
        "        flags=0x0",
    ]
    if peer.active:
        out.append(f" appctx:0x{address + 0x100:x} st0=7 st1=0 task_calls=0 state=EST")
        if peer.src:
            out.append(f"\n        xprt=RAW src={peer.src} addr={peer.dst}")
    if section.tables:
        out.append("\n        shared tables:")
        for index, name in enumerate(section.tables):
            shared = address + 0x200 + index * 0x40
            out.append(
                f"\n          0x{shared:x} local_id={index + 1} remote_id=0 flags=0x0 "
                "remote_data=0x0\n              last_acked=0 last_pushed=0 last_get=0 "
                f"teaching_origin=0 update=0\n              table:0x{shared + 0x20:x} "
                f"id={name} update=0 localupdate=0 commitupdate=0 refcnt=1"
            )
            if dump_dict:
                out.append("\n        TX dictionary cache:\n        RX dictionary cache:")
                for row in range(32):
                    cells = "".join(f"  {i:3d} -> -" for i in range(row * 4, row * 4 + 4))
                    out.append(f"\n        {cells}")
            else:
                out.append('\n        Dictionary cache not dumped (use "show peers dict")')
    out.append("\n")
    return "".join(out)
