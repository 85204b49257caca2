"""Quorum sizes for a BFT validator set of n members, tolerating f = (n - 1) // 3 faults.

Named once here and never written as inline arithmetic elsewhere:

* ``quorum(n)`` = ceil(2n/3): commit seals that make a block final, PREPAREs that
  prepare it, ROUND-CHANGEs that justify a new round (QBFT's quorum).
* ``weak_quorum(n)`` = f + 1: enough that at least one honest member is among them;
  f+1 ROUND-CHANGEs for a higher round move a node up at once.
"""

from __future__ import annotations


def max_faulty(n: int) -> int:
    return (n - 1) // 3


def quorum(n: int) -> int:
    return -(-2 * n // 3)


def weak_quorum(n: int) -> int:
    return max_faulty(n) + 1
