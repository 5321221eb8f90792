"""The `resolvers NAME` sections of the configuration (configuration.txt 5.3.2), kept apart
from config/model.py to hold that module within its size. Pure, immutable data."""

from __future__ import annotations

from dataclasses import dataclass, field

from poise.config.where import Where


@dataclass(frozen=True, slots=True)
class Nameserver:
    """`nameserver ID ADDRESS:PORT` in a `resolvers` section (`tcp@` for DNS over TCP)."""

    name: str
    host: str
    port: int
    where: Where
    tcp: bool = False


@dataclass(frozen=True, slots=True)
class Hold:
    """`hold STATUS PERIOD` (ms): how long the last answer of each kind is kept."""

    valid: int = 10_000
    nx: int = 30_000
    timeout: int = 30_000
    refused: int = 30_000
    other: int = 30_000
    obsolete: int = 0


@dataclass(frozen=True, slots=True)
class Resolvers:
    """A `resolvers NAME` section (configuration.txt 5.3.2), with HAProxy's defaults."""

    name: str
    where: Where
    nameservers: tuple[Nameserver, ...] = ()
    resolve_retries: int = 3
    timeout_resolve: int = 1000  # ms between two resolutions
    timeout_retry: int = 1000  # ms before a query is sent again
    hold: Hold = field(default_factory=Hold)
    accepted_payload_size: int = 512
