"""``straits audit``: the chain checked end to end, from genesis to head.

Sources (``sources``) hand over blocks as they hold them; ``auditor`` decodes each one,
replays it with the ledger's own rules and runs every check of ``checks`` on it;
``compare`` walks several sources side by side; ``report`` prints what was found.
"""
