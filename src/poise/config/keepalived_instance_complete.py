"""A `vrrp_instance` after reading: completed with the `global_defs` defaults (which may
come later in the file) and checked as a whole, as Keepalived does after reading: its
address family, priority 255 and `nopreempt`, `state MASTER` and `preempt_delay`, the advert
interval each VRRP version can carry; what Keepalived corrects with a warning is corrected
the same way.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from poise.config.diagnostics import Diagnostic, error, warning
from poise.config.keepalived_instance import InstanceDraft
from poise.config.keepalived_model import GlobalDefs, Notify, VirtualAddress, VrrpInstance

V3_MAX_ADVERT = 40.95  # RFC 5798 section 5.2.7: 12 bits of centiseconds


def complete_instance(
    draft: InstanceDraft, defaults: GlobalDefs, diagnostics: list[Diagnostic]
) -> VrrpInstance | None:
    """The instance with the global defaults applied, or None when it cannot run."""
    values = dict(draft.values)
    where = draft.where
    if "virtual_router_id" not in values:
        diagnostics.append(error(where, "missing virtual_router_id", "vrrp_instance"))
        return None
    if "interface" not in values:
        diagnostics.append(
            error(
                where,
                "missing interface (an instance without one is not implemented yet in poise)",
                "vrrp_instance",
            )
        )
        return None
    if not _family(draft, values, diagnostics):
        return None
    # keepalived.conf(5): IPv6 instances use version 3 whatever vrrp_version says (an
    # explicit `version 2` is sent as VRRPv2 over IPv6 by Keepalived 2.2.7, and by poise)
    values.setdefault("version", 3 if values["family"] == 6 else defaults.vrrp_version)
    if not values["virtual_ipaddress"]:
        # As Keepalived 2.2.7 (keepalived -t exits 5 on the first): VRRPv3 and IPv6 need an
        # address; a VRRPv2 instance runs without one (adverts with no address, its notify
        # scripts on each change), with a warning.
        if values["version"] == 3 or values["family"] == 6:
            diagnostics.append(
                error(
                    where,
                    f"({draft.name}) No VIP specified; at least one is required",
                    "vrrp_instance",
                )
            )
            return None
        diagnostics.append(
            warning(
                where, f"({draft.name}) No VIP specified; at least one is sensible", "vrrp_instance"
            )
        )
    if values["family"] == 6 and values["version"] == 2 and values.get("auth_pass"):
        diagnostics.append(
            error(
                draft.places.get("authentication", where),
                "authentication over IPv6 (VRRPv2 with a password) is not implemented yet in poise",
                "authentication",
            )
        )
        return None
    values.setdefault("garp_master_delay", defaults.vrrp_garp_master_delay)
    values.setdefault("garp_master_repeat", defaults.vrrp_garp_master_repeat)
    values.setdefault("garp_master_refresh", defaults.vrrp_garp_master_refresh)
    values.setdefault("garp_master_refresh_repeat", defaults.vrrp_garp_master_refresh_repeat)
    lower_delay = defaults.vrrp_garp_lower_prio_delay
    lower_repeat = defaults.vrrp_garp_lower_prio_repeat
    values.setdefault(
        "garp_lower_prio_delay", values["garp_master_delay"] if lower_delay is None else lower_delay
    )
    values.setdefault(
        "garp_lower_prio_repeat",
        values["garp_master_repeat"] if lower_repeat is None else lower_repeat,
    )
    values.setdefault("lower_prio_no_advert", defaults.vrrp_lower_prio_no_advert)
    values.setdefault("higher_prio_send_advert", defaults.vrrp_higher_prio_send_advert)
    values.setdefault("skip_check_adv_addr", defaults.vrrp_skip_check_adv_addr)
    if defaults.vrrp_check_unicast_src:
        values["check_unicast_src"] = True
    instance = VrrpInstance(name=draft.name, where=where, notify=Notify(**draft.notify), **values)
    return _reconcile(instance, draft, diagnostics)


def _family(draft: InstanceDraft, values: dict[str, Any], diagnostics: list[Diagnostic]) -> bool:
    """An instance is IPv4 or IPv6 (RFC 5798 section 5.2.9): IPv6 with `native_ipv6` or
    when its first virtual address is IPv6. As Keepalived 2.2.7 (vrrp.c): a virtual address
    of the other family is ignored with its warning (`virtual_ipaddress_excluded` takes
    either family); a unicast peer or source of the other family is an error."""
    vips: tuple[VirtualAddress, ...] = values.get("virtual_ipaddress", ())
    family = values.get("family") or (vips[0].version if vips else 4)
    values["family"] = family
    kept = []
    for vip in vips:
        if vip.version == family:
            kept.append(vip)
            continue
        diagnostics.append(
            warning(
                vip.where,
                f"({draft.name}): address family must match VRRP instance "
                f"[{vip.interface}] - ignoring",
                "virtual_ipaddress",
            )
        )
    values["virtual_ipaddress"] = tuple(kept)
    if family == 6 and kept and not kept[0].ip.is_link_local:
        # Keepalived's own warning at start (RFC 5798 5.2.9: it SHOULD be link-local)
        diagnostics.append(
            warning(
                kept[0].where,
                f"({draft.name}) the first IPv6 VIP address should be link local",
                "virtual_ipaddress",
            )
        )
    fine = True
    for peer in values.get("unicast_peer", ()):
        if peer.version != family:
            diagnostics.append(
                error(
                    draft.places.get(f"peer {peer}", draft.where),
                    f"VRRP instance[{draft.name}] and unicast peer address[{peer}] MUST be "
                    "of the same family",
                    "unicast_peer",
                )
            )
            fine = False
    source = values.get("unicast_src_ip")
    if source is not None and source.version != family:
        diagnostics.append(
            error(
                draft.places.get("unicast_src_ip", draft.places.get("mcast_src_ip", draft.where)),
                f"({draft.name}) source address {source} is not of the instance's family "
                f"(IPv{family})",
                "unicast_src_ip",
            )
        )
        fine = False
    return fine


def _reconcile(
    instance: VrrpInstance, draft: InstanceDraft, diagnostics: list[Diagnostic]
) -> VrrpInstance:
    """The combinations Keepalived corrects with a warning, corrected the same way."""
    places = draft.places

    def note(keyword: str, message: str) -> None:
        diagnostics.append(warning(places.get(keyword, instance.where), message, keyword))

    advert = instance.advert_int
    if instance.version == 2 and advert != int(advert):
        rounded = max(1, round(advert))
        note(
            "advert_int",
            f"VRRPv2 advertises whole seconds: {advert:g} is rounded to "
            f"{rounded} (use 'version 3' for sub-second adverts)",
        )
        instance = replace(instance, advert_int=float(rounded))
    elif instance.version == 3:
        centis = max(1, round(advert * 100))
        if centis > round(V3_MAX_ADVERT * 100):
            diagnostics.append(
                error(
                    places.get("advert_int", instance.where),
                    f"VRRPv3 advert_int {advert:g} is above {V3_MAX_ADVERT} seconds",
                    "advert_int",
                )
            )
        elif abs(centis - advert * 100) > 1e-6:
            note(
                "advert_int",
                f"VRRPv3 advertises centiseconds: {advert:g} is rounded to {centis / 100:g}",
            )
            instance = replace(instance, advert_int=centis / 100)
    if instance.version == 3 and instance.auth_pass is not None:
        note("authentication", "VRRPv3 has no authentication: ignored, as Keepalived does")
        instance = replace(instance, auth_pass=None)
    if instance.owner and instance.nopreempt:
        note("nopreempt", "nopreempt does not apply to the address owner (priority 255): ignored")
        instance = replace(instance, nopreempt=False)
    if instance.use_vmac == "":
        instance = replace(instance, use_vmac=f"vrrp.{instance.virtual_router_id}")
    if instance.use_vmac is not None and instance.unicast and not instance.vmac_xmit_base:
        note(
            "use_vmac", f"({instance.name}) unicast with use_vmac requires vmac_xmit_base - setting"
        )
        instance = replace(instance, vmac_xmit_base=True)
    if instance.vmac_xmit_base and instance.use_vmac is None:
        note("vmac_xmit_base", "vmac_xmit_base without use_vmac: ignored")
        instance = replace(instance, vmac_xmit_base=False)
    if instance.initial_master and instance.preempt_delay:
        note(
            "preempt_delay",
            "preempt_delay does not work with 'state MASTER': ignored, as Keepalived does",
        )
        instance = replace(instance, preempt_delay=0.0)
    return instance
