"""The pure core of Straits: no network, no clock, no randomness.

Modules: ``codec`` (canonical bytes), ``keys`` (Ed25519 / P-256), ``transaction``,
``block``, ``quorum``, ``verifier`` (batch signature checks), ``genesis``,
``state`` (the state machine), ``store`` (storage interface, memory and SQLite),
``consensus`` (the QBFT engine).
"""
