"""Tests of deploy/. The container network test needs podman and the image and takes
minutes, so it runs in `make test-deploy` (which sets STRAITS_CONTAINER_TESTS=1 after
building the image), not in `make test`."""

import os

collect_ignore = [] if os.environ.get("STRAITS_CONTAINER_TESTS") == "1" else [
    "test_container_network.py"]
