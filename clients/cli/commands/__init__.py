"""One module per top-level ``straits`` command; each exposes ``register(subparsers)``."""
