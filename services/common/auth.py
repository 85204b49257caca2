"""Who is calling, and may they: identity from the client certificate, rules from one table.

The TLS handshake has already refused anyone without a certificate from the network
CA. ``AuthInterceptor`` then reads the caller's certificate from the gRPC auth
context, derives a ``Caller`` from its ``straits://<role>/<participant-id>`` URI and
checks the method's row in ``RULES``; servicers read the same ``Caller`` with
``caller_of(context)`` to scope what a bank may see. No request field ever names the
caller.

Two rules hold beyond the table:

* a method with no row is refused (deny by default), so a new RPC needs a decision;
* a ``client`` caller is served only by the node of the participant it acts for (a
  bank's client by that bank's node), never by another participant's node.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from cryptography import x509

from ledger.errors import expected
from ledger.roles import Role
from services.common.errors import AccessDeniedError, BadCertificateError, abort
from services.common.handlers import wrap_handler
from services.common.pki import Identity, common_name_of, identity_of

VALIDATOR, CENTRAL_BANK, BANK, REGULATOR, CLIENT = (
    Role.VALIDATOR, Role.CENTRAL_BANK, Role.BANK, Role.REGULATOR, Role.CLIENT)
PARTICIPANTS = frozenset({VALIDATOR, CENTRAL_BANK, BANK, REGULATOR})
ANYONE = frozenset(Role)
# Roles that read every account and every transaction.
SEE_ALL = frozenset({VALIDATOR, CENTRAL_BANK, REGULATOR})


@dataclass(frozen=True)
class Caller:
    participant_id: str
    role: Role
    name: str  # the certificate's common name, for logs

    @property
    def sees_all(self) -> bool:
        return self.role in SEE_ALL

    def may_read(self, participant_id: str) -> bool:
        """A bank (or its client) reads only its own data; validators, central bank and
        regulator read everyone's."""
        return self.sees_all or self.participant_id == participant_id

    def require_read(self, participant_id: str) -> None:
        if not self.may_read(participant_id):
            raise AccessDeniedError(
                expected(f"data of {self.participant_id!r}", participant_id), field="account"
            )


def _service(name: str) -> str:
    return f"/{name}/"


# Full method names ("/package.Service/Method") or whole services ("/package.Service/").
# The exact method row wins over its service's row.
_VALIDATOR = "straits.validator.v1.ValidatorService"
RULES: Mapping[str, frozenset[Role]] = {
    f"/{_VALIDATOR}/SubmitTransactions": frozenset({BANK, CENTRAL_BANK}),
    f"/{_VALIDATOR}/GetTransaction": PARTICIPANTS,
    f"/{_VALIDATOR}/GetBlocks": PARTICIPANTS,
    f"/{_VALIDATOR}/StreamBlocks": PARTICIPANTS,
    f"/{_VALIDATOR}/GetAccount": frozenset({BANK, CENTRAL_BANK, REGULATOR}),
    f"/{_VALIDATOR}/GetAccounts": frozenset({BANK, CENTRAL_BANK, REGULATOR}),
    f"/{_VALIDATOR}/GetHead": PARTICIPANTS,
    _service("straits.consensus.v1.ConsensusService"): frozenset({VALIDATOR}),
    _service("straits.bank.v1.BankService"): frozenset({CLIENT}),
    _service("straits.central_bank.v1.CentralBankService"): frozenset({CLIENT}),
    _service("grpc.health.v1.Health"): ANYONE,
    _service("grpc.reflection.v1.ServerReflection"): ANYONE,
    _service("grpc.reflection.v1alpha.ServerReflection"): ANYONE,
}


def rule_for(method: str, rules: Mapping[str, frozenset[Role]] = RULES) -> frozenset[Role]:
    """Roles allowed to call ``method``; empty when the table has no row for it."""
    exact = rules.get(method)
    if exact is not None:
        return exact
    return rules.get(method[: method.rfind("/") + 1], frozenset())


@functools.lru_cache(maxsize=4096)
def _caller_from_pem(pem: bytes) -> Caller:
    # A connection's certificate is the same on every call: parse it once.
    certificate = x509.load_pem_x509_certificate(pem)
    identity: Identity = identity_of(certificate)
    return Caller(identity.participant_id, identity.role, common_name_of(certificate))


def caller_of(context: grpc.ServicerContext) -> Caller:
    """The caller proven by the TLS handshake. Raises ``BadCertificateError`` when the
    certificate, though signed by the CA, carries no Straits identity."""
    pems = context.auth_context().get("x509_pem_cert")
    if not pems:
        raise BadCertificateError("expected a client certificate on the connection, got none")
    return _caller_from_pem(pems[0])


def check(caller: Caller, method: str, node_participant: str,
          rules: Mapping[str, frozenset[Role]] = RULES) -> None:
    allowed = rule_for(method, rules)
    if caller.role not in allowed:
        names = sorted(r.value for r in allowed) or ["nobody (no access rule)"]
        raise AccessDeniedError(
            f"{method} may be called by {', '.join(names)}; "
            f"caller {caller.participant_id!r} is {caller.role.value}"
        )
    if caller.role is CLIENT and caller.participant_id != node_participant:
        raise AccessDeniedError(
            f"this node serves the clients of {node_participant!r}; "
            f"the caller is a client of {caller.participant_id!r}"
        )


class AuthInterceptor(grpc.ServerInterceptor):
    """Refuses, before the servicer runs, every call the caller's role may not make."""

    def __init__(self, node_participant: str,
                 rules: Mapping[str, frozenset[Role]] = RULES) -> None:
        self._node_participant = node_participant
        self._rules = rules

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method

        def guard(behavior: Callable[..., Any], streaming: bool) -> Callable[..., Any]:
            def guarded(request: Any, context: grpc.ServicerContext) -> Any:
                try:
                    check(caller_of(context), method, self._node_participant, self._rules)
                except (AccessDeniedError, BadCertificateError) as error:
                    abort(context, error)
                return behavior(request, context)

            return guarded

        return wrap_handler(handler, guard)
