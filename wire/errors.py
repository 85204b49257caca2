"""The errors a node answers with beyond the ledger's own: shared by servers and clients.

They share the base of ``ledger.errors``, so one table (``services.common.errors``)
maps every error to a gRPC status; clients raise the same classes for the same
causes (a bad config value, an unreachable node), so the CLI reports both alike.
"""

from __future__ import annotations

from ledger import errors as core


class ConfigError(core.StraitsError):
    """A node configuration file with a missing or bad value; ``field`` names it."""

    code = "bad_config"


class BadCertificateError(core.StraitsError):
    """A certificate that does not carry a Straits identity or was not issued by the CA."""

    code = "bad_certificate"


class AccessDeniedError(core.StraitsError):
    """The caller's certificate is valid but its role or participant may not do this."""

    code = "access_denied"


class InvalidRequestError(core.StraitsError):
    """A request field that is missing or out of range, whatever the ledger's state."""

    code = "invalid_request"


class NotFoundError(core.StraitsError):
    code = "not_found"


class DuplicateRequestError(core.StraitsError):
    """A request_id reused with different content: the first request stands."""

    code = "duplicate_request"


class OverloadedError(core.StraitsError):
    """Back-pressure: the mempool or a queue is full; retry later, with backoff."""

    code = "overloaded"


class UnavailableError(core.StraitsError):
    """The node cannot serve now (starting, catching up, no validator reachable)."""

    code = "unavailable"
