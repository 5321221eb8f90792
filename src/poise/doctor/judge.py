"""The judgement of `poise doctor`: what the probes saw (facts.py) turned into checks, each
PASS, WARN or FAIL with what was seen and what to do. The names are stable (scripts key on
them): dns, dns.binds, tcp, tls.handshake, tls.chain, tls.san, tls.expiry, http here;
http.server, sticky, spread, websocket, websocket.idle in judge_session.py. Pure: time
comes in as `now`.

The failures are the ones a balanced set-up is known for (seeds/000): WebSockets blocked,
sessions not sticky, a certificate trusted but for another name, DNS pointing elsewhere.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Mapping, Sequence

from cryptography import x509

from poise.certs import inspect, names
from poise.doctor.facts import (
    Connected,
    Handshake,
    Reply,
    Resolved,
    Verified,
)
from poise.doctor.report import Check, Status

PASS, WARN, FAIL = Status.PASS, Status.WARN, Status.FAIL
EXPIRY_WARNING_DAYS = inspect.EXPIRY_WARNING_DAYS
WILDCARDS = ("0.0.0.0", "::", "*", "")


def ms(seconds: float) -> str:
    if seconds < 0.01:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def listing(items: Sequence[str]) -> str:
    return ", ".join(items) if items else "(none)"


# --- dns, dns.binds, tcp -------------------------------------------------------------------


def judge_dns(resolved: Resolved) -> Check:
    if not resolved.addresses:
        return Check(
            "dns",
            FAIL,
            f"{resolved.host} does not resolve ({resolved.via}): {resolved.error or 'no address'}",
            "create the A/AAAA record for the balancer's address (or test with "
            "--resolve NAME:ADDR)",
        )
    return Check("dns", PASS, f"{resolved.host} -> {listing(resolved.addresses)} ({resolved.via})")


def _is_local(address: str, local_addresses: frozenset[str]) -> bool:
    """An address of this host: one of its interfaces', or loopback (all of 127/8)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.is_loopback or str(ip) in local_addresses


def _same(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


def _bound(
    address: str, binds: Sequence[str], local_addresses: frozenset[str], vips: Mapping[str, str]
) -> str | None:
    """How poise receives connections to `address`, or None when it does not. `0.0.0.0`
    takes IPv4 addresses; `::` both families (Linux's default, without `v6only`)."""
    ipv6 = ":" in address
    wildcard = any(bind in WILDCARDS and not (ipv6 and bind == "0.0.0.0") for bind in binds)
    if any(_same(bind, address) for bind in binds):
        return f"poise binds {address}"
    vip = next((name for ip, name in vips.items() if _same(ip, address)), None)
    if vip is not None and wildcard:
        return f"{address} is a VIP of vrrp_instance {vip} and poise binds all addresses"
    if wildcard and _is_local(address, local_addresses):
        return f"{address} is an address of this host and poise binds all addresses"
    return None


def judge_binds(
    resolved: Resolved,
    port: int,
    binds: Sequence[str],
    local_addresses: frozenset[str],
    vips: Mapping[str, str],
) -> Check | None:
    """`dns.binds`: do the addresses the name resolves to reach poise (a bind of the URL's
    port, or a VIP with a wildcard bind)? `vips` maps each VIP to its vrrp_instance."""
    if not resolved.addresses:
        return None
    if not binds:
        return Check(
            "dns.binds",
            FAIL,
            f"no frontend binds port {port}",
            f"add `bind ADDR:{port}` to the frontend that serves {resolved.host}",
        )
    listens = listing([_endpoint(bind, port) for bind in binds])
    reasons = [_bound(address, binds, local_addresses, vips) for address in resolved.addresses]
    missing = [a for a, reason in zip(resolved.addresses, reasons, strict=True) if not reason]
    if not missing:
        return Check("dns.binds", PASS, "; ".join(r for r in reasons if r))
    vip_text = "no VIP is " + listing(missing) if not vips else _vip_text(missing, vips)
    saw = (
        f"{resolved.host} resolves to {listing(missing)}, but poise listens on {listens} "
        f"and {vip_text}: the DNS record points elsewhere"
    )
    advice = f"point the record for {resolved.host} at the balancer's address (a VIP, or {listens})"
    if any(bind in WILDCARDS for bind in binds):
        advice += "; or, if this is not the balancer's host, run poise doctor there"
    elif any(ip in missing for ip in vips):
        advice = f"add `bind {missing[0]}:{port}` (a VIP: `transparent` or ip_nonlocal_bind)"
    return Check("dns.binds", FAIL, saw, advice)


def _vip_text(missing: Sequence[str], vips: Mapping[str, str]) -> str:
    held = [f"{ip} is the VIP of {vips[ip]}" for ip in missing if ip in vips]
    if held:
        return "; ".join(held) + " but no bind takes it"
    return f"no VIP is {listing(missing)} (VIPs: {listing(list(vips))})"


def _endpoint(bind: str, port: int) -> str:
    host = "*" if bind in WILDCARDS else bind
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def judge_tcp(connected: Connected) -> Check:
    where = _endpoint(connected.address, connected.port)
    if connected.error:
        return Check("tcp", FAIL, f"{where}: {connected.error}", _tcp_advice(connected.error))
    return Check("tcp", PASS, f"{where} accepted the connection in {ms(connected.seconds)}")


def _tcp_advice(error: str) -> str:
    if "refused" in error:
        return "nothing listens there: is poise running, and does a frontend bind this address?"
    if "timed out" in error:
        return "a firewall drops the packets, or the address is not up (is the VIP on a node?)"
    return "check the route to the balancer's address"


# --- TLS ----------------------------------------------------------------------------------


def judge_handshake(handshake: Handshake) -> Check:
    sni = f"SNI {handshake.sni}" if handshake.sni else "no SNI (an IP address)"
    if handshake.error:
        return Check(
            "tls.handshake",
            FAIL,
            f"the TLS handshake failed ({sni}): {handshake.error}",
            "is TLS terminated on this port (`bind ... ssl crt FILE`), or does it speak plain "
            "HTTP (try http://)? with `strict-sni`, a certificate must match the name",
        )
    return Check(
        "tls.handshake",
        PASS,
        f"{handshake.protocol}, {handshake.cipher}, {sni}, in {ms(handshake.seconds)}",
    )


def certificate(der: bytes) -> inspect.CertInfo:
    return inspect.describe(x509.load_der_x509_certificate(der))


def judge_chain(verified: Verified, cert: inspect.CertInfo) -> Check:
    store = f"--ca {verified.ca_file}" if verified.ca_file else "the system store"
    if verified.trusted:
        return Check("tls.chain", PASS, f"trusted: issued by {cert.issuer}, verified by {store}")
    reason = f" ({verified.reason})" if verified.reason else ""
    if cert.self_signed:
        what = (
            f"untrusted: a self-signed certificate ({cert.subject}), which {store} does not trust"
        )
    else:
        what = f"untrusted: issued by {cert.issuer}, which {store} does not trust"
    advice = (
        "give the CA's certificate with --ca FILE, and install it on every client "
        "(clients trust a CA, not a balancer)"
    )
    if cert.self_signed:
        advice = (
            "issue the certificate from a CA the clients trust (poise cert ca, poise cert issue)"
        )
    return Check("tls.chain", FAIL, what + reason, advice)


def judge_san(cert: inspect.CertInfo, host: str) -> Check:
    covered = [*cert.dns, *cert.ips]
    if names.host_matches(cert.dns, cert.ips, cert.common_name, host):
        if not cert.dns and not names.is_ip(host):
            return Check(
                "tls.san",
                WARN,
                f"{host} is only the subject's CN ({cert.common_name}); there is no subjectAltName",
                f"reissue with a subjectAltName: poise cert issue --dns {host}",
            )
        return Check("tls.san", PASS, f"the certificate covers {host} (SAN: {listing(covered)})")
    shown = covered or ([f"CN={cert.common_name}"] if cert.common_name else [])
    flag = "--ip" if names.is_ip(host) else "--dns"
    return Check(
        "tls.san",
        FAIL,
        f"the certificate covers {listing(shown)}; you asked for {host}",
        f"issue a certificate whose subjectAltName has {host} (poise cert issue {flag} {host}), "
        "or point clients at a name it covers",
    )


def judge_expiry(cert: inspect.CertInfo, now: dt.datetime) -> Check:
    until = cert.not_after.date().isoformat()
    if cert.not_before > now:
        return Check(
            "tls.expiry",
            FAIL,
            f"not valid before {cert.not_before.isoformat()}",
            "check the clocks of the CA and of this host",
        )
    days = (cert.not_after - now).total_seconds() / 86400
    renew = "renew the certificate (poise cert issue), then reload poise"
    if days < 0:
        return Check("tls.expiry", FAIL, f"expired on {until} ({-days:.0f} days ago)", renew)
    if days < EXPIRY_WARNING_DAYS:
        return Check("tls.expiry", WARN, f"expires on {until}, in {days:.0f} days", renew)
    return Check("tls.expiry", PASS, f"valid until {until} ({days:.0f} days)")


# --- HTTP ---------------------------------------------------------------------------------

HTTP_ADVICE = {
    502: "a server answered with something invalid or closed early (the server's log)",
    503: "no server is up in the backend (health checks), or every queue is full",
    504: "a server did not answer within `timeout server`",
}


def judge_http(reply: Reply, path: str, tls: bool = True) -> Check:
    if reply.error:
        advice = "look at the balancer's log for this request (its termination state)"
        if not tls:
            advice += "; a TLS port closes plain HTTP: try https://"
        return Check("http", FAIL, f"GET {path}: no response: {reply.error}", advice)
    saw = f"GET {path}: {reply.status} {reply.reason} in {ms(reply.seconds)}".replace("  ", " ")
    if reply.status >= 500:
        return Check("http", FAIL, saw, HTTP_ADVICE.get(reply.status, "see the server's log"))
    if reply.status >= 400:
        return Check(
            "http",
            WARN,
            saw,
            "the request was refused: an `http-request deny`, or the application (a path "
            "that needs a login?)",
        )
    if 300 <= reply.status < 400 and reply.header("location"):
        location = reply.header("location")
        return Check("http", WARN, f"{saw} -> {location}", f"run poise doctor {location}")
    return Check("http", PASS, saw)
