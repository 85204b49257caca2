"""Hosts in network namespaces need root, iproute2 and nftables, and take minutes:
`make test-partition` installs what they need and sets STRAITS_NETNS_TESTS=1."""

import os

collect_ignore = [] if os.environ.get("STRAITS_NETNS_TESTS") == "1" else [
    "test_partitions.py", "test_topology.py"]
