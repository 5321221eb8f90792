"""`show peers` in HAProxy 2.6's layout (admin/commands_peers.py), from the state the
shell keeps (core/peers/state.py). The expected text is HAProxy's lines, long as they are."""

# ruff: noqa: E501

from __future__ import annotations

from poise.admin.commands_peers import section_text
from poise.core.peers.state import PeerState, SectionState

EXPECTED = """\
0x560001000000: [08/Dec/2026:03:15:26] id=p disabled=0 flags=0x0 resync_timeout=<NEVER> task_calls=0
  0x560001000400: id=poi(local,inactive) addr=127.0.0.1:17002 last_status=NONE last_hdshk=<NEVER>
        reconnect=<NEVER> heartbeat=<NEVER> confirm=0 tx_hbt=0 rx_hbt=0 no_hbt=0 new_conn=0 proto_err=0 coll=0
        flags=0x0
        shared tables:
          0x560001000600 local_id=1 remote_id=0 flags=0x0 remote_data=0x0
              last_acked=0 last_pushed=0 last_get=0 teaching_origin=0 update=0
              table:0x560001000620 id=st update=0 localupdate=0 commitupdate=0 refcnt=1
        Dictionary cache not dumped (use "show peers dict")
  0x560001000800: id=hap(remote,active) addr=127.0.0.1:17001 last_status=ESTA last_hdshk=1m5s
        reconnect=<PAST> heartbeat=2s confirm=0 tx_hbt=4 rx_hbt=5 no_hbt=0 new_conn=2 proto_err=1 coll=1
        flags=0x0 appctx:0x560001000900 st0=7 st1=0 task_calls=0 state=EST
        xprt=RAW src=127.0.0.1:40000 addr=127.0.0.1:17002
        shared tables:
          0x560001000a00 local_id=1 remote_id=0 flags=0x0 remote_data=0x0
              last_acked=0 last_pushed=0 last_get=0 teaching_origin=0 update=0
              table:0x560001000a20 id=st update=0 localupdate=0 commitupdate=0 refcnt=1
        Dictionary cache not dumped (use "show peers dict")
"""


def test_show_peers_lists_the_last_declared_peer_first_as_haproxy() -> None:
    hap = PeerState("hap", False, "127.0.0.1:17001", status=200, last_handshake=35.0)
    hap.reconnect, hap.heartbeat, hap.active, hap.established = 99.0, 102.5, True, True
    hap.tx_hbt, hap.rx_hbt, hap.new_conn, hap.proto_err, hap.coll = 4, 5, 2, 1, 1
    hap.src, hap.dst = "127.0.0.1:40000", "127.0.0.1:17002"
    poi = PeerState("poi", True, "127.0.0.1:17002")
    section = SectionState("p", "08/Dec/2026:03:15:26", [hap, poi], ["st"])
    assert section_text(section, 0, 100.0, False) == EXPECTED


def test_the_dictionary_dump_lists_every_slot() -> None:
    section = SectionState("p", "08/Dec/2026:03:15:26", [PeerState("a", True, "x:1")], ["st"])
    text = section_text(section, 0, 0.0, True)
    assert "        TX dictionary cache:\n        RX dictionary cache:\n" in text
    assert "          124 -> -  125 -> -  126 -> -  127 -> -\n" in text
