"""The shell's side of the operating system that is not the network paths: loading a
configuration from disk (load.py: files, user and group names, server DNS names) and
telling systemd how the service is doing (notify.py). Used by the process layer, the
command line, the VRRP daemon and `poise doctor`.
"""
