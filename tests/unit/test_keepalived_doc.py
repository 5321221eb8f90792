"""docs/vrrp.md's keyword table is the parser's: it is generated from the keyword tables
(scripts/gen-vrrp-doc), and this test fails when the page differs from what they make now,
so a keyword added, implemented or dropped cannot leave the page behind. The statuses it
shows are checked against what the parser does with each keyword."""

from __future__ import annotations

from pathlib import Path

import pytest

from poise.config import keepalived_doc
from poise.config.diagnostics import Diagnostic
from poise.config.keepalived import parse
from poise.config.keepalived_lexer import INCLUDE_KEYWORDS
from tests.unit.keepalived_support import FakeSource

PAGE = Path(__file__).resolve().parents[2] / "docs" / "vrrp.md"


def test_page_is_generated_from_the_tables() -> None:
    page = PAGE.read_text()
    assert keepalived_doc.splice(page) == page, "docs/vrrp.md is stale: run scripts/gen-vrrp-doc"


def test_prose_is_kept_around_the_table() -> None:
    page = "intro\n" + keepalived_doc.BEGIN + "\nSTALE TEXT\n" + keepalived_doc.END + "\noutro\n"
    spliced = keepalived_doc.splice(page)
    assert spliced.startswith("intro\n" + keepalived_doc.BEGIN)
    assert spliced.endswith(keepalived_doc.END + "\noutro\n")
    assert "STALE TEXT" not in spliced
    assert "| `vrrp_instance` | supported |" in spliced


def test_a_page_without_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="no"):
        keepalived_doc.splice("no markers here\n")


INSTANCE = (
    "vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 51\n {line}\n"
    " virtual_ipaddress {{\n  198.51.100.10\n }}\n}}\n",
    4,
)
# Each block as a file with one line of the keyword under test, and that line's number.
TEMPLATES = {
    "top level": ("{line} {{\n}}\n", 1),
    "global_defs": ("global_defs {{\n {line}\n}}\n", 2),
    "vrrp_script": ("vrrp_script chk {{\n script /bin/true\n {line}\n}}\n", 3),
    "vrrp_instance": INSTANCE,
    "vrrp_sync_group": (
        "vrrp_sync_group G {{\n group {{\n  VI_1\n }}\n {line}\n}}\n" + INSTANCE[0],
        5,
    ),
    "virtual_server": ("virtual_server 198.51.100.1 80 {{\n protocol TCP\n {line}\n}}\n", 3),
    "real_server": (
        "virtual_server 198.51.100.1 80 {{\n protocol TCP\n real_server 198.51.100.2 80 {{\n"
        " {line}\n }}\n}}\n",
        4,
    ),
}


def _diagnostics(block: str, line: str) -> list[Diagnostic]:
    template, number = TEMPLATES[block]
    source = FakeSource({"/k.conf": template.format(line=line)})
    _config, diagnostics = parse("/k.conf", source)
    return [d for d in diagnostics if d.where.line == number]


CASES = [
    (block.title, keyword, status)
    for block in keepalived_doc.blocks()
    if block.title in TEMPLATES
    for keyword, status in keepalived_doc.rows(block)
    if keyword not in INCLUDE_KEYWORDS
]


@pytest.mark.parametrize(("block", "keyword", "status"), CASES)
def test_statuses_are_what_the_parser_does(block: str, keyword: str, status: str) -> None:
    """A keyword said to be refused is an error at its line, one said to warn is a
    warning, and a supported one (or one of poise's own) is never called unknown or
    unimplemented."""
    found = _diagnostics(block, f"{keyword} 1")
    if status == keepalived_doc.SUPPORTED or status.startswith(keepalived_doc.OWN):
        assert not [
            d for d in found if "unknown keyword" in d.message or "not implemented" in d.message
        ], (keyword, found)
    else:
        assert found, keyword
        assert found[0].severity.value == status.split(":", maxsplit=1)[0], (keyword, found[0])
