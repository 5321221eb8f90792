"""poise: a load balancer that reads haproxy.cfg and keepalived.conf."""

__version__ = "0.1.0"
