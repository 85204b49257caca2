"""ISO 20022 for Straits banks: pacs.009 in, pacs.002 and camt.053 out.

The message types are the ``pyiso20022`` classes generated from the ISO 20022
schemas; ``docs/iso20022.md`` maps their fields to Straits.
"""

from clients.iso20022.bank import IsoBank, SentFile
from clients.iso20022.camt053 import read_camt053, write_camt053
from clients.iso20022.document import IsoFileError
from clients.iso20022.pacs002 import Outcome, read_pacs002, write_pacs002
from clients.iso20022.pacs009 import FileTransfer, TransferFile, read_pacs009, write_pacs009

__all__ = ["FileTransfer", "IsoBank", "IsoFileError", "Outcome", "SentFile", "TransferFile",
           "read_camt053", "read_pacs002", "read_pacs009", "write_camt053", "write_pacs002",
           "write_pacs009"]
