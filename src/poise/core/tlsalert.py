"""The TLS alert a client's failed handshake ends with, as HAProxy 2.6 (OpenSSL) sends it.

OpenSSL writes a fatal alert before it gives up on a handshake, but the event loops' TLS
layers (asyncio's sslproto, uvloop's) close the connection without flushing it, so the
client saw a bare FIN where HAProxy sends, for instance, `15 03 03 00 02 02 0a` (fatal
unexpected_message) to a broken handshake record, or protocol_version to a TLS 1.1 client.
The shell (net/tls.py) sends the record this table gives for OpenSSL's reason.

Bytes that are no TLS at all (`GET / HTTP/1.1`, zeros, text: OpenSSL's `http request`,
`wrong version number`) get no alert: measured with Debian's haproxy 2.6.12, it closes those
with a bare FIN too. Neither does an alert the client sent, nor a timeout or a reset.
"""

from __future__ import annotations

# RFC 8446 6 (AlertDescription), for OpenSSL's reason codes (ssl/ssl_err.c) that end a
# server's handshake with SSLfatal(alert, reason).
UNEXPECTED_MESSAGE = 10
BAD_RECORD_MAC = 20
RECORD_OVERFLOW = 22
HANDSHAKE_FAILURE = 40
DECODE_ERROR = 50
PROTOCOL_VERSION = 70
UNRECOGNIZED_NAME = 112

_ALERTS = {
    "UNEXPECTED_MESSAGE": UNEXPECTED_MESSAGE,
    "UNEXPECTED_RECORD": UNEXPECTED_MESSAGE,
    "DECRYPTION_FAILED_OR_BAD_RECORD_MAC": BAD_RECORD_MAC,
    "PACKET_LENGTH_TOO_LONG": RECORD_OVERFLOW,
    "ENCRYPTED_LENGTH_TOO_LONG": RECORD_OVERFLOW,
    "DATA_LENGTH_TOO_LONG": RECORD_OVERFLOW,
    "NO_SHARED_CIPHER": HANDSHAKE_FAILURE,
    "NO_SUITABLE_KEY_SHARE": HANDSHAKE_FAILURE,
    "LENGTH_MISMATCH": DECODE_ERROR,
    "BAD_PACKET_LENGTH": DECODE_ERROR,
    "BAD_LENGTH": DECODE_ERROR,
    "BAD_EXTENSION": DECODE_ERROR,
    "UNSUPPORTED_PROTOCOL": PROTOCOL_VERSION,
    "VERSION_TOO_LOW": PROTOCOL_VERSION,
    # The only callback poise gives OpenSSL picks the certificate by SNI, and fails only
    # for `strict-sni` with unrecognized_name (net/tls.py ListenerTls.select).
    "CALLBACK_FAILED": UNRECOGNIZED_NAME,
}


def alert_record(reason: str | None) -> bytes:
    """The fatal alert record for OpenSSL's `reason` (`UNEXPECTED_MESSAGE`), or b"" when
    OpenSSL sends none for it. The record says TLS 1.2 (0x0303), as OpenSSL's did."""
    description = _ALERTS.get(reason or "")
    if description is None:
        return b""
    return bytes((0x15, 0x03, 0x03, 0x00, 0x02, 0x02, description))
