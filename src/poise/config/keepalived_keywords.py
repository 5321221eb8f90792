"""The keywords of keepalived.conf, block by block, as keepalived.conf(5) of Keepalived 2.2
lists them: which ones poise implements, which ones it does not implement yet (an error
that says so, never silently ignored), and which ones are meaningless for poise (mail: a
warning that poise sends no mail). Any other word is unknown, and the error suggests the
nearest keyword of its block.
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Top level. `include` and its variants are handled by the lexer.
TOP = _words(
    "global_defs vrrp_script vrrp_instance vrrp_sync_group static_ipaddress static_routes "
    "static_rules"
)
TOP_UNIMPLEMENTED = _words(
    "net_namespace net_namespace_ipvs namespace_with_ipsets instance use_pid_dir "
    "linkbeat_use_polling child_wait_time linkbeat_interfaces interface_up_down_delays "
    "track_group track_file vrrp_track_file "
    "vrrp_track_process bfd_instance garp_group"
)
# The LVS half: keepalived_lvs.py reads these (its keywords: keepalived_lvs_keywords.py).
TOP_LVS = _words("virtual_server virtual_server_group")

GLOBAL = _words(
    "router_id vrrp_version script_user enable_script_security vrrp_mcast_group4 "
    "vrrp_garp_master_delay vrrp_garp_master_repeat vrrp_garp_master_refresh "
    "vrrp_garp_master_refresh_repeat vrrp_garp_interval vrrp_garp_lower_prio_delay "
    "vrrp_garp_lower_prio_repeat vrrp_min_garp vrrp_lower_prio_no_advert "
    "vrrp_higher_prio_send_advert vrrp_check_unicast_src vrrp_skip_check_adv_addr "
    "vrrp_startup_delay vrrp_mcast_group6 vrrp_priority vrrp_no_swap vrrp_cpu_affinity "
    "vrrp_rt_priority max_auto_priority min_auto_priority_delay vrrp_rlimit_rttime "
    "process_name process_names vrrp_process_name vrrp_netlink_cmd_rcv_bufs "
    "vrrp_netlink_cmd_rcv_bufs_force vrrp_netlink_monitor_rcv_bufs "
    "vrrp_netlink_monitor_rcv_bufs_force"
)
GLOBAL_MAIL = _words(
    "notification_email notification_email_from smtp_server smtp_helo_name "
    "smtp_connect_timeout smtp_alert smtp_alert_vrrp smtp_alert_checker no_email_faults "
    "no_checker_emails"
)
# Meaningless for poise: a warning that says why.
_NO_CHECKER_PROCESS = (
    "poise vrrp has no separate checker process: the checkers run in its one process, "
    "which vrrp_priority, vrrp_no_swap and vrrp_cpu_affinity set: ignored"
)
_NO_CHECKER_NETLINK = (
    "poise vrrp has no separate checker process with netlink sockets of its own (its virtual "
    "servers are relayed in user space, with no IPVS to command): the one process's netlink "
    "sockets are the vrrp_netlink_* ones: ignored"
)
_NO_PROCESS_MONITOR = (
    "poise vrrp opens no process-monitoring socket (track_process and vrrp_track_process "
    "are not implemented yet): ignored"
)
_NO_BFD_PROCESS = "poise has no BFD process (BFD is not implemented yet): ignored"
_NO_CHECKER_NAME = (
    "poise vrrp has no separate checker process: the checkers run in its one process, "
    "which vrrp_process_name (or process_name) names: ignored"
)
GLOBAL_MEANINGLESS = {
    "checker_process_name": _NO_CHECKER_NAME,
    "lvs_process_name": _NO_CHECKER_NAME,  # Keepalived 2.2's old name for it
    "bfd_process_name": _NO_BFD_PROCESS,
    **{
        f"checker_{name}": _NO_CHECKER_PROCESS
        for name in ("priority", "rt_priority", "rlimit_rttime", "no_swap", "cpu_affinity")
    },
    **{
        f"lvs_netlink_{name}": _NO_CHECKER_NETLINK
        for name in ("cmd_rcv_bufs", "cmd_rcv_bufs_force", "monitor_rcv_bufs")
    },
    "lvs_netlink_monitor_rcv_bufs_force": _NO_CHECKER_NETLINK,
    "process_monitor_rcv_bufs": _NO_PROCESS_MONITOR,
    "process_monitor_rcv_bufs_force": _NO_PROCESS_MONITOR,
    **{
        f"bfd_{name}": _NO_BFD_PROCESS
        for name in ("priority", "rt_priority", "rlimit_rttime", "no_swap", "cpu_affinity")
    },
}
GLOBAL_UNIMPLEMENTED = _words(
    "checker_log_all_failures child_wait_time config_save_dir data_use_instance "
    "dbus_service_name default_interface disable_local_igmp dynamic_interfaces enable_dbus "
    "enable_snmp_checker enable_snmp_rfc enable_snmp_rfcv2 enable_snmp_rfcv3 enable_snmp_vrrp "
    "enable_traps fifo_write_vrrp_states_on_reload include_check instance "
    "linkbeat_use_polling log_unknown_vrids lvs_flush lvs_flush_on_stop lvs_notify_fifo "
    "lvs_notify_fifo_script lvs_sync_daemon lvs_timeouts namespace_with_ipsets net_namespace "
    "net_namespace_ipvs nftables nftables_counters nftables_ifindex nftables_ipvs "
    "nftables_ipvs_priority nftables_ipvs_start_fwmark nftables_priority notify_fifo "
    "notify_fifo_script random_seed reload_check_config reload_file reload_repeat "
    "reload_time_file rs_init_notifies shutdown_script shutdown_script_timeout snmp_socket "
    "startup_script startup_script_timeout tmp_config_directory umask use_pid_dir "
    "vmac_addr_prefix vmac_prefix vrrp_down_timer_adverts vrrp_garp_extra_if "
    "vrrp_gna_interval vrrp_ipsets vrrp_iptables vrrp_notify_fifo vrrp_notify_fifo_script "
    "vrrp_notify_priority_changes vrrp_rx_bufs_multiplier vrrp_rx_bufs_policy vrrp_strict"
)

SCRIPT = _words("script interval timeout weight rise fall user init_fail")

INSTANCE = _words(
    "state interface virtual_router_id priority advert_int authentication virtual_ipaddress "
    "track_script track_interface dont_track_primary nopreempt preempt preempt_delay "
    "unicast_src_ip mcast_src_ip unicast_peer notify_master notify_backup notify_fault "
    "notify_stop notify garp_master_delay garp_master_repeat garp_master_refresh "
    "garp_master_refresh_repeat garp_lower_prio_delay garp_lower_prio_repeat version "
    "lower_prio_no_advert higher_prio_send_advert check_unicast_src skip_check_adv_addr "
    "virtual_routes virtual_rules accept use_vmac vmac_xmit_base native_ipv6 "
    "virtual_ipaddress_excluded no_accept"
)
INSTANCE_MAIL = _words("smtp_alert")
# Meaningless for poise: a warning that says why.
INSTANCE_MEANINGLESS = {
    "lvs_sync_daemon_interface": "IPVS connection synchronisation: poise's virtual servers "
    "relay connections in user space, with no kernel connection table to send to the "
    "backup (connections open at a failover are cut): ignored",
}
INSTANCE_UNIMPLEMENTED = _words(
    "debug down_timer_adverts garp_extra_if kernel_rx_buf_size "
    "linkbeat_use_polling mcast_dst_ip notify_master_rx_lower_pri "
    "notify_priority_changes old_unicast_checksum promote_secondaries strict_mode "
    "track_bfd track_file track_process track_src_ip unicast_fault_no_peer unicast_ttl "
    "use_ipvlan use_vmac_addr vrf"
)

AUTHENTICATION = _words("auth_type auth_pass")

SYNC_GROUP = _words("group notify_master notify_backup notify_fault notify_stop notify")
SYNC_GROUP_MAIL = _words("smtp_alert")
SYNC_GROUP_UNIMPLEMENTED = _words(
    "track_interface track_script track_file track_process track_bfd notify_deleted "
    "notify_priority_changes global_tracking sync_group_tracking_weight"
)

# Options of a `virtual_ipaddress` line after the address.
VIP_OPTIONS = _words("dev label brd scope")
VIP_FLAGS = _words("-nodad")  # options without a value
VIP_OPTIONS_UNIMPLEMENTED = _words(
    "use_vmac peer home mngtmpaddr noprefixroute autojoin no_track preferred_lft track_group"
)
SCOPES = _words("global site link host nowhere")
BOOLEANS = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}
