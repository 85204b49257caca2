"""The topology's own guarantees, before any node relies on them: its safety check
refuses what would let traffic out, and it leaves nothing behind, failure or not."""

from __future__ import annotations

import subprocess

import pytest

from tests.hosts.topology import Topology


def _namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def test_the_safety_check_refuses_a_default_route() -> None:
    with Topology(["a", "b"], subnet="10.78.0.0/24") as topology:
        topology.check_safety()
        subprocess.run(["ip", "-n", topology.namespace("a"), "route", "add", "default", "dev",
                        "eth0"], check=True)
        with pytest.raises(RuntimeError, match="default route"):
            topology.check_safety()


def test_the_safety_check_refuses_a_peer_reached_other_than_through_the_bridge() -> None:
    with Topology(["a", "b"], subnet="10.78.0.0/24") as topology:
        subprocess.run(["ip", "-n", topology.namespace("a"), "link", "add", "detour", "type",
                        "veth", "peer", "name", "detour-end"], check=True)
        subprocess.run(["ip", "-n", topology.namespace("a"), "link", "set", "detour", "up"],
                       check=True)
        subprocess.run(["ip", "-n", topology.namespace("a"), "route", "add",
                        f"{topology.address('b')}/32", "dev", "detour"], check=True)
        with pytest.raises(RuntimeError, match="not the bridge"):
            topology.check_safety()


def test_every_namespace_goes_when_the_test_fails_inside() -> None:
    with pytest.raises(ZeroDivisionError), Topology(["a", "b"]) as topology:
        assert topology.namespace("a") in _namespaces()
        topology.cut(["a"], ["b"])
        _ = 1 / 0
    assert topology.tag not in _namespaces()
