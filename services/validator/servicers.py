"""ValidatorService and ConsensusService servicers: decode, ask the node, answer.

Who may call what is settled before these run (``services.common.auth.RULES``); here a
bank's view is narrowed to its own account and the transactions it pays or
receives. Errors leave as ``StraitsError``s and the error interceptor turns them
into statuses from the one table in ``services.common.errors``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import grpc
from straits.common.v1 import common_pb2 as common_pb
from straits.consensus.v1 import consensus_pb2 as consensus_pb
from straits.consensus.v1 import consensus_service_pb2 as consensus_service_pb
from straits.consensus.v1 import consensus_service_pb2_grpc as consensus_service_grpc
from straits.ledger.v1 import block_pb2 as block_pb
from straits.ledger.v1 import transaction_pb2 as tx_pb
from straits.validator.v1 import validator_pb2 as pb
from straits.validator.v1 import validator_pb2_grpc as pb_grpc

from ledger.block import Block
from ledger.chain import Chain
from ledger.errors import expected
from ledger.roles import Role
from ledger.state import State
from ledger.store import Store
from ledger.store.base import counterparty
from ledger.transaction import Transaction
from services.common.auth import Caller, caller_of
from services.common.errors import InvalidRequestError, NotFoundError
from services.validator.commits import CommitFeed, Committed
from services.validator.intake import Intake
from services.validator.mempool import Mempool
from services.validator.settlement_day import gridlock_view, settlement_day

MAX_SUBMISSION = 10_000
MAX_BLOCKS_PER_CALL = 256
MAX_ACCOUNTS_PAGE = 1000
STREAM_POLL_S = 1.0
SUBMIT_TIMEOUT_S = 30.0
MAX_SYNC_BYTES = 8 * 1024 * 1024
SYNC_READ = 8
MAX_CLIENT_RESPONSE_BYTES = 3 * 1024 * 1024

_ROLES = {
    Role.CENTRAL_BANK: common_pb.PARTICIPANT_ROLE_CENTRAL_BANK,
    Role.BANK: common_pb.PARTICIPANT_ROLE_BANK,
    Role.REGULATOR: common_pb.PARTICIPANT_ROLE_REGULATOR,
}


def account_view(state: State, account_id: str) -> common_pb.Account:
    participant = state.participants.get(account_id)
    if participant is None:
        raise NotFoundError(expected("a participant id", account_id), field="account")
    account = common_pb.Account(
        id=participant.id,
        role=_ROLES.get(participant.role, common_pb.PARTICIPANT_ROLE_UNSPECIFIED),
        name=participant.name,
        suspended=participant.suspended,
    )
    if account_id in state.balances:
        position = state.position(account_id)
        account.balance = position.balance
        account.queued_in = position.queued_incoming
        account.queued_out = position.queued_outgoing
        account.position = position.net
        account.day.CopyFrom(settlement_day(state, account_id, position.queued_outgoing_count))
    return account


def check_batch_size(transactions: Sequence[object]) -> None:
    if len(transactions) > MAX_SUBMISSION:
        raise InvalidRequestError(
            expected(f"at most {MAX_SUBMISSION} transactions a call", len(transactions)),
            field="transactions",
        )


def involves(transaction: Transaction, participant: str) -> bool:
    return transaction.signer == participant or counterparty(transaction) == participant


def block_view(committed: Committed, caller: Caller, store: Store) -> pb.BlockView:
    block = committed.block
    view = pb.BlockView(transaction_ids=[t.id for t in block.transactions])
    if caller.sees_all:
        view.block.ParseFromString(block.encode())  # the block's one encoding
        view.receipts.extend(committed.receipts)
        view.queue_settlements.extend(committed.settlements)
        return view
    mine = {t.id for t in block.transactions if involves(t, caller.participant_id)}
    view.redacted = True
    view.receipt_hashes.extend(committed.receipt_leaves)
    view.block.header = block.header_bytes
    view.block.seals.extend(
        block_pb.CommitSeal(validator=s.validator, signature=s.signature) for s in block.seals
    )
    view.block.transactions.extend(t.to_proto() for t in block.transactions if t.id in mine)
    view.receipts.extend(r for r in committed.receipts if r.transaction_id in mine)
    # A queue settlement names only the transfer: look it up to see whose it is.
    for settlement in committed.settlements:
        record = store.transaction(settlement.transfer_id)
        if record is not None and involves(record.transaction, caller.participant_id):
            view.queue_settlements.append(settlement)
    return view


class ValidatorServicer(pb_grpc.ValidatorServiceServicer):
    def __init__(
        self,
        *,
        chain: Chain,
        store: Store,
        mempool: Mempool,
        intake: Intake,
        feed: CommitFeed,
        running: Callable[[], bool],
    ) -> None:
        self._chain = chain
        self._store = store
        self._mempool = mempool
        self._intake = intake
        self._feed = feed
        self._running = running

    def SubmitTransactions(
        self, request: pb.SubmitTransactionsRequest, context: grpc.ServicerContext
    ) -> pb.SubmitTransactionsResponse:
        check_batch_size(request.transactions)
        caller = caller_of(context)
        remaining = context.time_remaining()
        results = self._intake.submit(
            request.transactions,
            sender=caller.participant_id,
            # A call without a deadline reports an enormous time remaining: cap the wait.
            timeout=SUBMIT_TIMEOUT_S
            if remaining is None
            else min(max(0.0, remaining), SUBMIT_TIMEOUT_S),
        )
        return pb.SubmitTransactionsResponse(results=results)

    def GetTransaction(
        self, request: pb.GetTransactionRequest, context: grpc.ServicerContext
    ) -> pb.GetTransactionResponse:
        caller = caller_of(context)
        tx_id = bytes(request.transaction_id)
        if len(tx_id) != 32:
            raise InvalidRequestError(
                expected("a 32-byte transaction id", f"{len(tx_id)} bytes"), field="transaction_id"
            )
        record = self._store.transaction(tx_id)
        pending = None if record is not None else self._mempool.get(tx_id)
        if pending is not None:
            # A commit writes the store before it empties the mempool: look again, so a
            # transaction committed meanwhile is never reported as still pending.
            record = self._store.transaction(tx_id)
        if record is not None and (
            caller.sees_all or involves(record.transaction, caller.participant_id)
        ):
            response = pb.GetTransactionResponse(
                status=pb.TRANSACTION_STATUS_COMMITTED,
                transaction=record.transaction.to_proto(),
                commit=common_pb.Commit(
                    transaction_id=tx_id, height=record.height, receipt=record.receipt
                ),
            )
            if record.settlement is not None:
                response.queue_outcome = record.settlement.outcome
                response.queue_outcome_height = record.settled_height or 0
                response.queue_settlement.CopyFrom(record.settlement)
            return response
        if (
            record is None
            and pending is not None
            and (caller.sees_all or involves(pending, caller.participant_id))
        ):
            return pb.GetTransactionResponse(
                status=pb.TRANSACTION_STATUS_PENDING, transaction=pending.to_proto()
            )
        raise NotFoundError(
            expected("the id of a transaction you may see", tx_id.hex()), field="transaction_id"
        )

    def GetBlocks(
        self, request: pb.GetBlocksRequest, context: grpc.ServicerContext
    ) -> pb.GetBlocksResponse:
        caller = caller_of(context)
        limit = min(request.limit or MAX_BLOCKS_PER_CALL, MAX_BLOCKS_PER_CALL)
        start = max(request.from_height, 1)
        response = pb.GetBlocksResponse()
        size = 0
        for height in range(start, min(start + limit, self._feed.height + 1)):
            committed = self._feed.get(height)
            if committed is None:
                break
            view = block_view(committed, caller, self._store)
            size += view.ByteSize()
            # At least one block, and within a default client's 4 MB message limit.
            if response.blocks and size > MAX_CLIENT_RESPONSE_BYTES:
                break
            response.blocks.append(view)
        return response

    def StreamBlocks(
        self, request: pb.StreamBlocksRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.StreamBlocksResponse]:
        caller = caller_of(context)
        height = max(request.from_height, 1)
        while context.is_active() and self._running():
            if height > self._feed.height:
                self._feed.wait_past(height - 1, STREAM_POLL_S)
                continue
            committed = self._feed.get(height)
            if committed is None:
                return
            yield pb.StreamBlocksResponse(block=block_view(committed, caller, self._store))
            height += 1

    def GetAccount(
        self, request: pb.GetAccountRequest, context: grpc.ServicerContext
    ) -> pb.GetAccountResponse:
        caller = caller_of(context)
        caller.require_read(request.account)
        state = self._chain.state
        return pb.GetAccountResponse(
            account=account_view(state, request.account), height=state.height
        )

    def GetAccounts(
        self, request: pb.GetAccountsRequest, context: grpc.ServicerContext
    ) -> pb.GetAccountsResponse:
        caller = caller_of(context)
        state = self._chain.state
        size = min(request.page_size or 100, MAX_ACCOUNTS_PAGE)
        ids = sorted(i for i in state.participants if caller.may_read(i) and i > request.page_token)
        page = ids[:size]
        answer = pb.GetAccountsResponse(
            accounts=[account_view(state, i) for i in page],
            next_page_token=page[-1] if len(ids) > size else "",
            height=state.height,
        )
        if caller.sees_all:
            answer.gridlock.CopyFrom(gridlock_view(state))
        return answer

    def GetHead(
        self, request: pb.GetHeadRequest, context: grpc.ServicerContext
    ) -> pb.GetHeadResponse:
        state, head = self._chain.current()
        validators = state.validators_for(state.height + 1)
        block = self._store.block(head.height) if head.height else None
        return pb.GetHeadResponse(
            chain_id=state.chain_id,
            height=head.height,
            block_hash=head.hash,
            state_root=block.header.state_root if block else state.root(),
            timestamp_ms=state.timestamp_ms,
            validators=[
                tx_pb.Validator(id=v, key=validators[v].to_proto()) for v in sorted(validators)
            ],
        )


class ConsensusServicer(consensus_service_grpc.ConsensusServiceServicer):
    def __init__(
        self,
        *,
        deliver: Callable[[bytes], None],
        intake: Intake,
        store: Store,
    ) -> None:
        self._deliver = deliver
        self._intake = intake
        self._store = store

    def Deliver(
        self, request: consensus_service_pb.DeliverRequest, context: grpc.ServicerContext
    ) -> consensus_service_pb.DeliverResponse:
        for message in request.messages:
            self._deliver(message)
        return consensus_service_pb.DeliverResponse()

    def ShareTransactions(
        self, request: consensus_service_pb.ShareTransactionsRequest, context: grpc.ServicerContext
    ) -> consensus_service_pb.ShareTransactionsResponse:
        check_batch_size(request.transactions)
        queued = self._intake.share(request.transactions)
        return consensus_service_pb.ShareTransactionsResponse(
            accepted=len(request.transactions) if queued else 0
        )

    def SyncBlocks(
        self, request: consensus_pb.BlockRequest, context: grpc.ServicerContext
    ) -> consensus_pb.BlockResponse:
        count = min(
            max(request.to_height, request.from_height) - request.from_height + 1,
            MAX_BLOCKS_PER_CALL,
        )
        response = consensus_pb.BlockResponse()
        height, last, size = max(request.from_height, 1), request.from_height + count - 1, 0
        # Small reads: the store's lock is shared with this node's own commits.
        while height <= last and size <= MAX_SYNC_BYTES:
            blocks: list[Block] = self._store.blocks(height, min(SYNC_READ, last - height + 1))
            if not blocks:
                break
            for block in blocks:
                message = block.to_proto()
                size += message.ByteSize()
                # At least one block, and no more than a peer's channel accepts at once.
                if response.blocks and size > MAX_SYNC_BYTES:
                    break
                response.blocks.append(message)
            height += len(blocks)
        return response
