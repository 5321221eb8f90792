"""The process layer: how a poise process starts, detaches, hands over and stops.

start.py (`poise run`), master.py and worker.py (master-worker mode), handover.py (the
sockets passed across a reload), runtime.py (one running configuration), vrrp.py (`poise
vrrp` as a process) and unix.py (pidfile, detaching, privileges, chroot). It sits under
the command line (poise.cli) and over the shell (poise.net, poise.checks, poise.vrrp...);
tests/unit/test_layers.py keeps that order.
"""
