"""Mutual TLS credentials for servers and channels, from a node's or client's files.

A server requires and verifies a client certificate from the network CA, so a
connection without one, with one from another CA or with an expired one fails in
the handshake and never reaches a servicer. A channel verifies the server against
the same CA and presents its own certificate. Certificates carry SANs for
``localhost`` and ``127.0.0.1``, so loopback targets need no name override.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the network CA certificate, and the holder's certificate and key."""

    ca: Path
    certificate: Path
    key: Path

    def read(self) -> tuple[bytes, bytes, bytes]:
        return self.ca.read_bytes(), self.certificate.read_bytes(), self.key.read_bytes()


def server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    ca, certificate, key = files.read()
    return grpc.ssl_server_credentials(
        [(key, certificate)], root_certificates=ca, require_client_auth=True
    )


def channel_credentials(files: TlsFiles) -> grpc.ChannelCredentials:
    ca, certificate, key = files.read()
    return grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=key, certificate_chain=certificate
    )


def secure_channel(
    address: str, files: TlsFiles, options: Sequence[tuple[str, object]] = ()
) -> grpc.Channel:
    return grpc.secure_channel(address, channel_credentials(files), options=list(options))
