"""`no_accept` (RFC 5798 section 6.1, Accept_Mode False): a master that is not the address
owner does not accept packets addressed to its virtual addresses, nor sends from them.
Keepalived 2.2.7 does it with nftables, and poise does the same, in the same shape (read
back from Keepalived with `nft list ruleset`): a table `keepalived` per family with a set
`vips`, an input chain dropping `daddr @vips` and an output chain dropping `saddr @vips`
(hook priority filter - 1); for IPv6, neighbour solicitations and advertisements pass (the
address must still be defended and announced) and link-local addresses are matched with
their interface (set `vips-link-local`). An address joins the set when its instance
becomes master and leaves it when it stops being master; the tables are made at start
(a leftover of a crash replaced) and deleted at exit.

The rules go through the `nft` program (Debian's `nftables` package), one `nft -f -`
script per change.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterable
from ipaddress import IPv6Address

from poise.config.keepalived_model import IPAddress, KeepalivedConfig

TABLE = "keepalived"  # Keepalived's default `nftables` table name
PRIORITY = "filter - 1"  # Keepalived's default nftables_priority -1
NFT_TIMEOUT = 5.0


class FirewallError(Exception):
    """nft is missing or refused a change; the message says which and why."""


def needed(config: KeepalivedConfig) -> bool:
    """Whether an instance runs in non-accept mode (the owner, priority 255, accepts)."""
    return any(not i.accept and not i.owner for i in config.instances)


def _tables() -> str:
    ip4 = f"""table ip {TABLE} {{
    set vips {{ type ipv4_addr; }}
    chain out {{ type filter hook output priority {PRIORITY}; policy accept;
        ip saddr @vips drop; }}
    chain in {{ type filter hook input priority {PRIORITY}; policy accept;
        ip daddr @vips drop; }}
}}
"""
    ip6 = f"""table ip6 {TABLE} {{
    set vips {{ type ipv6_addr; }}
    set vips-link-local {{ type ipv6_addr . ifname; }}
    set neighbor-discovery {{ type icmpv6_type; flags constant;
        elements = {{ nd-neighbor-solicit, nd-neighbor-advert }}; }}
    chain in_link_local {{ ip6 daddr . iifname @vips-link-local drop; }}
    chain out_link_local {{ ip6 saddr . oifname @vips-link-local drop; }}
    chain out {{ type filter hook output priority {PRIORITY}; policy accept;
        icmpv6 type @neighbor-discovery accept;
        ip6 saddr fe80::/10 goto out_link_local;
        ip6 saddr @vips drop; }}
    chain in {{ type filter hook input priority {PRIORITY}; policy accept;
        icmpv6 type @neighbor-discovery accept;
        ip6 daddr fe80::/10 goto in_link_local;
        ip6 daddr @vips drop; }}
}}
"""
    return ip4 + ip6


def _delete_tables() -> str:
    # `table X {}` first, so that deleting one that is not there is no error
    return "".join(
        f"table {family} {TABLE} {{}}\ndelete table {family} {TABLE}\n" for family in ("ip", "ip6")
    )


def _element(address: IPAddress, interface: str) -> tuple[str, str, str]:
    if isinstance(address, IPv6Address):
        if address.is_link_local:
            return "ip6", "vips-link-local", f'{address} . "{interface}"'
        return "ip6", "vips", str(address)
    return "ip", "vips", str(address)


class Firewall:
    """The nftables tables of the daemon's non-accept instances."""

    def __init__(self) -> None:
        self.program = shutil.which("nft")
        self.present: set[tuple[str, str, str]] = set()
        self.made = False

    def check(self) -> None:
        if self.program is None:
            raise FirewallError(
                "no_accept needs nftables' 'nft' program (Debian package nftables) to drop "
                "the packets addressed to the virtual addresses, and it is not installed"
            )

    async def start(self) -> None:
        """The tables, empty (a leftover of a crash replaced)."""
        await self._run(_delete_tables() + _tables())
        self.made = True

    async def drop(self, addresses: Iterable[tuple[IPAddress, str]], *, on: bool) -> None:
        """Drop (on) or accept again (off) what is addressed to `addresses` (each with its
        interface, which a link-local one is matched with)."""
        elements = {_element(address, interface) for address, interface in addresses}
        changing = elements - self.present if on else elements & self.present
        if not changing:
            return
        verb = "add" if on else "delete"
        script = "".join(
            f"{verb} element {family} {TABLE} {name} {{ {value} }}\n"
            for family, name, value in sorted(changing)
        )
        await self._run(script)
        self.present = self.present | changing if on else self.present - changing

    async def stop(self) -> None:
        if self.made:
            self.made = False
            self.present.clear()
            await self._run(_delete_tables())

    async def _run(self, script: str) -> None:
        self.check()
        assert self.program is not None
        process = await asyncio.create_subprocess_exec(
            self.program,
            "-f",
            "-",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(script.encode()), NFT_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise FirewallError(f"nft did not answer within {NFT_TIMEOUT:g} s") from None
        if process.returncode != 0:
            text = output.decode(errors="replace").strip().splitlines()
            raise FirewallError(f"nft refused the rules: {text[0] if text else process.returncode}")
