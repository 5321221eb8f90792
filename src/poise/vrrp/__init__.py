"""poise vrrp: a Keepalived-compatible VRRP daemon (pure packet codec and state machine,
and the shell around them)."""
