"""The keywords of keepalived.conf's LVS blocks (`virtual_server`, `virtual_server_group`,
`real_server` and the checkers), as keepalived.conf(5) of Keepalived 2.2 lists them, in
the three kinds keepalived_keywords.py uses for the VRRP half: implemented, not implemented
yet (an error that says so), meaningless for poise (a warning that says why).
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# poise's own, not Keepalived's (Keepalived warns of an unknown keyword and goes on): a
# real server (or every one of a virtual server, and its sorry server) is sent the PROXY
# protocol header naming the client, as HAProxy's `send-proxy` / `send-proxy-v2`.
POISE_OWN = {
    "send_proxy": "poise's own: the PROXY protocol header (v1) names the client to the real "
    "server, as HAProxy's send-proxy (docs/lvs.md)",
    "send_proxy_v2": "poise's own: the PROXY protocol header (v2) names the client to the real "
    "server, as HAProxy's send-proxy-v2 (docs/lvs.md)",
}

# Settings a virtual server passes down to its real servers, and they to their checkers.
INHERITED = _words(
    "connect_timeout retry delay_before_retry warmup delay_loop inhibit_on_failure alpha "
    "virtualhost"
) | frozenset(POISE_OWN)

VIRTUAL_SERVER = (
    _words(
        "lb_algo lvs_sched lb_kind lvs_method persistence_timeout persistence_granularity "
        "protocol ha_suspend virtualhost alpha omega quorum hysteresis quorum_up quorum_down "
        "sorry_server sorry_server_inhibit sorry_server_lvs_method connect_timeout retry "
        "delay_before_retry warmup delay_loop inhibit_on_failure real_server ops"
    )
    | INHERITED
)
VIRTUAL_SERVER_MEANINGLESS = {
    "smtp_alert": "poise sends no mail: ignored",
    "snmp_name": "poise has no SNMP agent: ignored",
}
VIRTUAL_SERVER_UNIMPLEMENTED = _words(
    "persistence_engine flag-1 flag-2 flag-3 sh-port sh-fallback mh-port mh-fallback ip_family"
)

REAL_SERVER = _words("weight lb_kind lvs_method notify_up notify_down") | INHERITED
REAL_SERVER_MEANINGLESS = VIRTUAL_SERVER_MEANINGLESS
REAL_SERVER_UNIMPLEMENTED = _words("uthreshold lthreshold")

CHECKERS = _words("TCP_CHECK HTTP_GET SSL_GET MISC_CHECK DNS_CHECK SMTP_CHECK")
CHECKERS_UNIMPLEMENTED = _words("BFD_CHECK UDP_CHECK PING_CHECK FILE_CHECK")

# Every checker but MISC_CHECK (which has the options from `alpha` on).
CHECKER_COMMON = _words(
    "connect_ip connect_port bindto bind_port connect_timeout retry delay_before_retry "
    "warmup delay_loop alpha log_all_failures"
)
CHECKER_COMMON_UNIMPLEMENTED = _words("bind_if fwmark")
CHECKER_OWN = {
    "TCP_CHECK": frozenset[str](),
    "HTTP_GET": _words("url http_protocol fast_recovery virtualhost"),
    "SSL_GET": _words("url http_protocol fast_recovery virtualhost enable_sni"),
    "SMTP_CHECK": _words("helo_name"),
    "DNS_CHECK": _words("type name"),
    "MISC_CHECK": _words("misc_path misc_timeout misc_dynamic user"),
}
MISC_COMMON = _words(
    "alpha connect_timeout retry delay_before_retry warmup delay_loop log_all_failures"
)

URL = _words("path digest status_code virtualhost")
URL_UNIMPLEMENTED = _words(
    "regex regex_no_match regex_options regex_stack regex_min_offset regex_max_offset"
)

SCHEDULERS_REFUSED = {
    "lblc": "locality-based scheduling keeps a table of destination addresses (transparent "
    "cache clusters behind the kernel's IPVS); a poise virtual server's destination is its "
    "own address, so there is nothing to keep: use sh, mh or dh",
    "lblcr": "locality-based scheduling with replication keeps a table of destination "
    "addresses (transparent cache clusters behind the kernel's IPVS); a poise virtual "
    "server's destination is its own address, so there is nothing to keep: use sh, mh or dh",
}
KERNEL_ONLY_METHODS = {
    "DR": "direct routing",
    "TUN": "IP tunnelling",
}
