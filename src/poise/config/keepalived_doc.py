"""The table of docs/vrrp.md that lists every Keepalived keyword with poise's status,
made from the keyword tables the keepalived.conf parser itself uses (keepalived_keywords,
keepalived_routes, the lexer's includes), so that the page cannot say something the parser
does not do. Pure: text in, text out; scripts/gen-vrrp-doc writes it into the page, and
tests/unit/test_keepalived_doc.py fails when the page differs from what this makes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from poise.config import keepalived_keywords as kw
from poise.config import keepalived_lvs_keywords as lvs
from poise.config.keepalived_lexer import INCLUDE_KEYWORDS
from poise.config.keepalived_routes import ROUTE_UNIMPLEMENTED, RULE_UNIMPLEMENTED

BEGIN = "<!-- BEGIN generated keyword table: scripts/gen-vrrp-doc; do not edit by hand -->"
END = "<!-- END generated keyword table -->"

SUPPORTED = "supported"
MAIL = "warning: poise sends no mail (ignored)"
UNIMPLEMENTED = "error: not implemented yet"
OWN = "poise's own"  # a keyword of poise's, not Keepalived's (keepalived_lvs_keywords.POISE_OWN)


@dataclass(frozen=True, slots=True)
class Block:
    """One block of keepalived.conf and the parser's tables for it."""

    title: str
    supported: Iterable[str] = ()
    warnings: Mapping[str, str] | None = None  # keyword: why it is only a warning
    unimplemented: Iterable[str] = ()


def blocks() -> tuple[Block, ...]:
    """Every block the parser reads, with the tables it reads it by."""
    mail = dict.fromkeys(kw.GLOBAL_MAIL, MAIL)
    meaningless = {k: f"warning: {why}" for k, why in kw.GLOBAL_MEANINGLESS.items()}
    return (
        Block("top level", kw.TOP | kw.TOP_LVS | INCLUDE_KEYWORDS, None, kw.TOP_UNIMPLEMENTED),
        Block("global_defs", kw.GLOBAL, mail | meaningless, kw.GLOBAL_UNIMPLEMENTED),
        Block("vrrp_script", kw.SCRIPT),
        Block(
            "vrrp_instance",
            kw.INSTANCE,
            dict.fromkeys(kw.INSTANCE_MAIL, MAIL)
            | {k: f"warning: {why}" for k, why in kw.INSTANCE_MEANINGLESS.items()},
            kw.INSTANCE_UNIMPLEMENTED,
        ),
        Block("vrrp_instance authentication", kw.AUTHENTICATION),
        Block(
            "vrrp_sync_group",
            kw.SYNC_GROUP,
            dict.fromkeys(kw.SYNC_GROUP_MAIL, MAIL),
            kw.SYNC_GROUP_UNIMPLEMENTED,
        ),
        Block("virtual_ipaddress options", kw.VIP_OPTIONS, None, kw.VIP_OPTIONS_UNIMPLEMENTED),
        Block("virtual_routes / static_routes options", (), None, ROUTE_UNIMPLEMENTED),
        Block("virtual_rules / static_rules options", (), None, RULE_UNIMPLEMENTED),
        *lvs_blocks(),
    )


def lvs_blocks() -> tuple[Block, ...]:
    """The LVS half (docs/lvs.md says how poise serves it)."""

    def warned(table: Mapping[str, str]) -> dict[str, str]:
        return {k: f"warning: {why}" for k, why in table.items()}

    own = lvs.CHECKER_OWN
    poise = frozenset(lvs.POISE_OWN)  # not Keepalived's: listed with what they do
    return (
        Block(
            "virtual_server",
            lvs.VIRTUAL_SERVER - poise,
            warned(lvs.VIRTUAL_SERVER_MEANINGLESS) | dict(lvs.POISE_OWN),
            lvs.VIRTUAL_SERVER_UNIMPLEMENTED,
        ),
        Block(
            "real_server",
            (lvs.REAL_SERVER | lvs.CHECKERS) - poise,
            warned(lvs.REAL_SERVER_MEANINGLESS) | dict(lvs.POISE_OWN),
            lvs.REAL_SERVER_UNIMPLEMENTED | lvs.CHECKERS_UNIMPLEMENTED,
        ),
        Block(
            "every checker but MISC_CHECK",
            lvs.CHECKER_COMMON,
            None,
            lvs.CHECKER_COMMON_UNIMPLEMENTED,
        ),
        Block("HTTP_GET", own["HTTP_GET"]),
        Block("SSL_GET", own["SSL_GET"]),
        Block("HTTP_GET / SSL_GET url", lvs.URL, None, lvs.URL_UNIMPLEMENTED),
        Block("SMTP_CHECK", own["SMTP_CHECK"]),
        Block("DNS_CHECK", own["DNS_CHECK"]),
        Block("MISC_CHECK", own["MISC_CHECK"] | lvs.MISC_COMMON),
    )


def rows(block: Block) -> list[tuple[str, str]]:
    """(keyword, status) in name order; a keyword in two tables is a bug of the tables."""
    found: dict[str, str] = {}
    sources: list[tuple[Iterable[str], str | None]] = [
        (block.supported, SUPPORTED),
        (block.unimplemented, UNIMPLEMENTED),
    ]
    for keywords, status in sources:
        for keyword in keywords:
            if keyword in found:
                raise ValueError(f"{block.title}: '{keyword}' is in two tables")
            found[keyword] = status or ""
    for keyword, status in (block.warnings or {}).items():
        if keyword in found:
            raise ValueError(f"{block.title}: '{keyword}' is in two tables")
        found[keyword] = status
    return sorted(found.items())


def table() -> str:
    """The generated part of docs/vrrp.md: one table per block, and the counts."""
    out: list[str] = []
    totals = {"supported": 0, "warning": 0, "error": 0, OWN: 0}
    for block in blocks():
        out.append(f"**{block.title}**")
        out.append("")
        out.append("| keyword | poise |")
        out.append("| --- | --- |")
        for keyword, status in rows(block):
            out.append(f"| `{keyword}` | {status} |")
            totals[status.split(":")[0]] += 1
        out.append("")
    summary = (
        f"{totals['supported']} supported, {totals['warning']} accepted with a warning, "
        f"{totals['error']} refused with an error naming FILE:LINE (not implemented yet), "
        f"{totals[OWN]} of poise's own (not Keepalived's keywords). "
        "Any other word is an unknown keyword: an error with the nearest known one suggested."
    )
    return "\n".join([summary, "", *out]).rstrip("\n") + "\n"


def splice(page: str) -> str:
    """`page` with the text between its BEGIN and END markers replaced by `table()`."""
    start = page.find(BEGIN)
    stop = page.find(END)
    if start < 0 or stop < start:
        raise ValueError(f"the page has no '{BEGIN}' ... '{END}' region")
    head = page[: start + len(BEGIN)]
    return f"{head}\n\n{table()}\n{page[stop:]}"
