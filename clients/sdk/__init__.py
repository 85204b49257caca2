"""Python SDK for Straits: typed clients over the public gRPC API.

    from clients.sdk import BankClient, open_channel
    from wire.tls import TlsFiles

    channel = open_channel("127.0.0.1:7105", TlsFiles(ca, certificate, key))
    bank = BankClient(channel)
    payment = bank.send("bank-b", 12_500, reference="invoice 42")

The regulator reads everything through one object, which reaches whichever node
serves each read under the regulator's certificate:

    from clients.sdk import NetworkIndex, Regulator

    with Regulator(NetworkIndex.load("var/local")) as regulator:
        regulator.positions(); regulator.supply(); regulator.bank("bank-b").queue()

Every call has a deadline; UNAVAILABLE is retried with backoff by gRPC itself, which
is safe because every call that moves money carries a ``request_id`` that the SDK
fixes before the first attempt. Failures raise ``ApiError``.
"""

from clients.sdk.bank import BankClient
from clients.sdk.central_bank import CentralBankClient
from clients.sdk.channel import ApiError, RetryPolicy, open_channel
from clients.sdk.network import NetworkIndex
from clients.sdk.regulator import Regulator, RegulatorClient

__all__ = ["ApiError", "BankClient", "CentralBankClient", "NetworkIndex", "Regulator",
           "RegulatorClient", "RetryPolicy", "open_channel"]
