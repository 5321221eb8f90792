"""`poise demo`: the parser; the demo itself (demo_app.py) is loaded only when it runs."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser("demo", help="two demo backends behind poise, on 127.0.0.1")
    demo.add_argument("--port", type=int, default=8080, help="the balancer's port")
    demo.add_argument("--duration", type=float, default=None, help="stop after N seconds")


def main(ns: argparse.Namespace) -> int:
    from poise.cli.demo_app import demo

    return demo(port=ns.port, duration=ns.duration)
