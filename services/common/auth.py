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
  bank's client by that bank's node), never by another participant's node;
* a Straits method this node does not serve (a bank's client asking its bank's node
  for the central bank's positions) is refused in words that say which node serves it
  and to whom, never with gRPC's bare UNIMPLEMENTED.
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
from services.common.revocation import RevocationList

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
    serial: int = 0  # the certificate's serial number, what a revocation names

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
_BANK = "straits.bank.v1.BankService"
_CENTRAL_BANK = "straits.central_bank.v1.CentralBankService"
# The regulator reads every bank's payments on that bank's node and the supply and
# positions on the central bank's node; it writes nothing anywhere.
_CLIENT_OR_REGULATOR = frozenset({CLIENT, REGULATOR})
_BANK_READS = ("GetBalance", "ListQueue", "ListHistory", "GetPayment", "WatchSettlements")
_CENTRAL_BANK_READS = ("GetTotalSupply", "ListPositions")
RULES: Mapping[str, frozenset[Role]] = {
    f"/{_VALIDATOR}/SubmitTransactions": frozenset({BANK, CENTRAL_BANK}),
    f"/{_VALIDATOR}/GetTransaction": PARTICIPANTS,
    f"/{_VALIDATOR}/GetBlocks": PARTICIPANTS,
    f"/{_VALIDATOR}/StreamBlocks": PARTICIPANTS,
    f"/{_VALIDATOR}/GetAccount": frozenset({BANK, CENTRAL_BANK, REGULATOR}),
    f"/{_VALIDATOR}/GetAccounts": frozenset({BANK, CENTRAL_BANK, REGULATOR}),
    f"/{_VALIDATOR}/GetHead": PARTICIPANTS,
    _service("straits.consensus.v1.ConsensusService"): frozenset({VALIDATOR}),
    _service(_BANK): frozenset({CLIENT}),
    **{f"/{_BANK}/{method}": _CLIENT_OR_REGULATOR for method in _BANK_READS},
    _service(_CENTRAL_BANK): frozenset({CLIENT}),
    **{f"/{_CENTRAL_BANK}/{method}": _CLIENT_OR_REGULATOR for method in _CENTRAL_BANK_READS},
    _service("grpc.health.v1.Health"): ANYONE,
    _service("grpc.reflection.v1.ServerReflection"): ANYONE,
    _service("grpc.reflection.v1alpha.ServerReflection"): ANYONE,
}


# Which node serves each of our services: said when a caller reaches the wrong one.
SERVED_BY: Mapping[str, str] = {
    _VALIDATOR: "every validator",
    "straits.consensus.v1.ConsensusService": "every validator",
    _BANK: "each bank's own node",
    _CENTRAL_BANK: "the central bank's node",
}
# Who each role is, in words, for refusals.
_WHO = {
    VALIDATOR: "validators",
    CENTRAL_BANK: "the central bank's node",
    BANK: "bank nodes",
    REGULATOR: "the regulator",
    CLIENT: "clients of the node's own participant",
}


def described(roles: frozenset[Role]) -> str:
    """``roles`` in words: "the regulator and clients of the node's own participant"."""
    words = [_WHO[r] for r in Role if r in roles]
    if not words:
        return "nobody (no access rule)"
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


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
    return Caller(identity.participant_id, identity.role, common_name_of(certificate),
                  certificate.serial_number)


def caller_of(context: grpc.ServicerContext) -> Caller:
    """The caller proven by the TLS handshake. Raises ``BadCertificateError`` when the
    certificate, though signed by the CA, carries no Straits identity."""
    pems = context.auth_context().get("x509_pem_cert")
    if not pems:
        raise BadCertificateError("expected a client certificate on the connection, got none")
    return _caller_from_pem(pems[0])


def served_by(method: str) -> str | None:
    """Which node serves ``method``'s service, in words; None outside our services."""
    return SERVED_BY.get(method.strip("/").partition("/")[0])


def not_served(caller: Caller, method: str, node_participant: str, where: str,
               rules: Mapping[str, frozenset[Role]] = RULES) -> AccessDeniedError:
    """The refusal for a method of ours that this node does not serve."""
    return AccessDeniedError(
        f"{method} is served by {where}, to {described(rule_for(method, rules))}; "
        f"this is {node_participant!r}'s node, and caller {caller.participant_id!r} "
        f"is {caller.role.value}"
    )


def check(caller: Caller, method: str, node_participant: str,
          rules: Mapping[str, frozenset[Role]] = RULES) -> None:
    allowed = rule_for(method, rules)
    if caller.role not in allowed:
        raise AccessDeniedError(
            f"{method} may be called by {described(allowed)} "
            f"({', '.join(sorted(r.value for r in allowed)) or 'none'}); "
            f"caller {caller.participant_id!r} is {caller.role.value}"
        )
    if caller.role is CLIENT and caller.participant_id != node_participant:
        raise AccessDeniedError(
            f"this node serves the clients of {node_participant!r}; "
            f"the caller is a client of {caller.participant_id!r}"
        )


# Raises ``AccessDeniedError`` when the caller is not, now, what its certificate says
# (a validator removed from the set, a bank never admitted or suspended from paying).
Membership = Callable[[Caller, str], None]


class AuthInterceptor(grpc.ServerInterceptor):
    """Refuses, before the servicer runs, every call the caller may not make: a revoked
    certificate, a role the method's rule leaves out, a participant the ledger does not
    (or no longer) know in that role."""

    def __init__(self, node_participant: str,
                 rules: Mapping[str, frozenset[Role]] = RULES, *,
                 revocations: RevocationList | None = None,
                 membership: Membership | None = None) -> None:
        self._node_participant = node_participant
        self._rules = rules
        self._revocations = revocations
        self._membership = membership

    def _check(self, context: grpc.ServicerContext, method: str) -> None:
        caller = caller_of(context)
        if self._revocations is not None and self._revocations.is_revoked(caller.serial):
            raise AccessDeniedError(
                f"the certificate {caller.name!r} (serial {caller.serial:x}) has been revoked")
        check(caller, method, self._node_participant, self._rules)
        if self._membership is not None:
            self._membership(caller, method)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None:
            return self._refusal(method)

        def guard(behavior: Callable[..., Any], streaming: bool) -> Callable[..., Any]:
            def guarded(request: Any, context: grpc.ServicerContext) -> Any:
                try:
                    self._check(context, method)
                except (AccessDeniedError, BadCertificateError) as error:
                    abort(context, error)
                return behavior(request, context)

            return guarded

        return wrap_handler(handler, guard)

    def _refusal(self, method: str) -> grpc.RpcMethodHandler | None:
        where = served_by(method)
        if where is None:
            return None  # not a method of ours: gRPC's UNIMPLEMENTED, as for any typo

        # The request's shape is unknown here; a unary handler that aborts before reading
        # answers unary and streaming calls alike.
        def refuse(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                caller = caller_of(context)
            except BadCertificateError as error:
                abort(context, error)
            abort(context, not_served(caller, method, self._node_participant, where,
                                      self._rules))

        return grpc.unary_unary_rpc_method_handler(refuse)
