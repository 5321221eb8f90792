"""The `-f FILE|DIR` option that run, reload and check share."""

from __future__ import annotations

import argparse


def add_files(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument(
        "-f",
        dest="files",
        action="append",
        required=required,
        metavar="FILE|DIR",
        help="configuration file, or directory of *.cfg files (repeatable, read in order)",
    )
