"""HAProxy's replacement strings (`regsub`, `map_regm`, `replace-header`): `\\N` is a
group of the match, `\\xHH` a byte. Pure."""

from __future__ import annotations

import re


def expand(template: str, match: re.Match[str]) -> str:
    """HAProxy's replacement string: `\\N` is group N (empty when it did not take
    part), `\\xHH` a byte, a backslash before anything else keeps that character."""

    def one(found: re.Match[str]) -> str:
        digit, hexa, other = found.groups()
        if digit is not None:
            number = int(digit)
            if number > (match.re.groups or 0):
                return ""
            return match.group(number) or ""
        if hexa is not None:
            return chr(int(hexa, 16))
        return str(other)

    return _BACKREFERENCE.sub(one, template)


_BACKREFERENCE = re.compile(r"\\(?:(\d)|x([0-9A-Fa-f]{2})|(.))", re.DOTALL)
