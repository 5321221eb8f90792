"""HAProxy's peers protocol 2.1, pure: the wire format (wire.py) and a session's state
machine that applies what a peer teaches to the stick tables (session.py)."""
