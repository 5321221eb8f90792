"""Certificates: PEM bundles as HAProxy reads them (bundle.py), the system's trust store
(system.py), what a certificate says and whether it is fit to serve (inspect.py), host name
matching (names.py) and a small certificate authority (ca.py). Built on `cryptography`; no
sockets, no event loop."""
