"""Hosts with their own addresses on one machine: a Linux network namespace per host,
joined by a bridge that lives in a namespace of its own, and nftables rules on that
bridge to cut links, isolate hosts and drop packets.

Nothing of it touches the root namespace: each host's interface is one end of a veth
pair whose other end is a port of the bridge, both created directly inside their
namespaces. ``check_safety`` proves it before anything runs; ``delete`` removes every
namespace (and with them every link and rule), and is what ``with`` calls on the way
out, failure or not. Names carry the creating process id, so a run also removes the
leftovers of an earlier run that was killed before it could clean up.
"""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

PREFIX = "straits-h"
_NAME = re.compile(rf"^{PREFIX}(\d+)-")
TABLE = "straits"


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return result


def _namespaces() -> list[str]:
    return [line.split()[0] for line in _run("ip", "netns", "list").stdout.splitlines() if line]


def remove_stale() -> list[str]:
    """Deletes the namespaces of earlier runs whose process is gone."""
    removed = []
    for name in _namespaces():
        match = _NAME.match(name)
        if match and not os.path.exists(f"/proc/{match.group(1)}"):
            _run("ip", "netns", "delete", name, check=False)
            removed.append(name)
    return removed


@dataclass
class Topology:
    hosts: Sequence[str]
    subnet: str = "10.77.0.0/24"
    tag: str = field(default_factory=lambda: f"{PREFIX}{os.getpid()}")
    created: list[str] = field(default_factory=list)

    @property
    def bridge_namespace(self) -> str:
        return f"{self.tag}-bridge"

    def namespace(self, host: str) -> str:
        return f"{self.tag}-{host}"

    def port(self, host: str) -> str:
        # Interface names are at most 15 bytes: the host's position names its port.
        return f"p{list(self.hosts).index(host)}"

    def address(self, host: str) -> str:
        network = ipaddress.ip_network(self.subnet)
        return str(network.network_address + 1 + list(self.hosts).index(host))

    def __enter__(self) -> Topology:
        try:
            self.create()
        except BaseException:
            self.delete()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.delete()

    def create(self) -> None:
        remove_stale()
        prefix = ipaddress.ip_network(self.subnet).prefixlen
        bridge = self.bridge_namespace
        _run("ip", "netns", "add", bridge)
        self.created.append(bridge)
        _run("ip", "-n", bridge, "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", bridge, "link", "set", "br0", "up")
        for host in self.hosts:
            namespace = self.namespace(host)
            _run("ip", "netns", "add", namespace)
            self.created.append(namespace)
            _run("ip", "link", "add", self.port(host), "netns", bridge, "type", "veth",
                 "peer", "name", "eth0", "netns", namespace)
            _run("ip", "-n", bridge, "link", "set", self.port(host), "master", "br0", "up")
            _run("ip", "-n", namespace, "link", "set", "lo", "up")
            _run("ip", "-n", namespace, "addr", "add", f"{self.address(host)}/{prefix}",
                 "dev", "eth0")
            _run("ip", "-n", namespace, "link", "set", "eth0", "up")
        self._nft(f"add table bridge {TABLE}")
        self._nft(f"add chain bridge {TABLE} forward "
                  "{ type filter hook forward priority 0 ; policy accept ; }")

    def delete(self) -> None:
        for namespace in reversed(self.created):
            _run("ip", "netns", "delete", namespace, check=False)
        self.created.clear()

    def check_safety(self) -> None:
        """Refuses to go on unless the topology is sealed off from the machine's network."""
        mine = [n for n in _namespaces() if n.startswith(f"{self.tag}-")]
        expected = {self.bridge_namespace, *(self.namespace(h) for h in self.hosts)}
        if set(mine) != expected:
            raise RuntimeError(f"expected namespaces {sorted(expected)}, found {sorted(mine)}")
        root_links = _run("ip", "-o", "link", "show").stdout
        root_addresses = _run("ip", "-o", "addr", "show").stdout
        for host in self.hosts:
            if re.search(rf"\d+: {self.port(host)}[@:]", root_links):
                raise RuntimeError(f"port {self.port(host)} is in the root namespace")
            if f" {self.address(host)}/" in root_addresses:
                raise RuntimeError(f"{self.address(host)} is an address of the root namespace")
        if "br0" not in _run("ip", "-n", self.bridge_namespace, "-o", "link", "show",
                             "type", "bridge").stdout:
            raise RuntimeError("expected the bridge inside its own namespace")
        for host in self.hosts:
            namespace = self.namespace(host)
            default = _run("ip", "-n", namespace, "route", "show", "default").stdout.strip()
            default6 = _run("ip", "-6", "-n", namespace, "route", "show", "default").stdout
            if default or default6.strip():
                raise RuntimeError(f"{namespace} has a default route: {default}{default6}")
            for peer in self.hosts:
                if peer == host:
                    continue
                route = _run("ip", "-n", namespace, "route", "get", self.address(peer)).stdout
                if " dev eth0 " not in route:
                    raise RuntimeError(
                        f"{namespace} reaches {self.address(peer)} by {route!r}, not the bridge")

    def _nft(self, command: str) -> None:
        _run("ip", "netns", "exec", self.bridge_namespace, "nft", command)

    def _drop(self, source: str, target: str) -> None:
        self._nft(f"add rule bridge {TABLE} forward iifname {self.port(source)} "
                  f"oifname {self.port(target)} drop")

    def cut(self, side_a: Iterable[str], side_b: Iterable[str]) -> None:
        """No packet between any host of ``side_a`` and any of ``side_b``, either way."""
        b = list(side_b)
        for x in side_a:
            for y in b:
                self._drop(x, y)
                self._drop(y, x)

    def isolate(self, host: str, *, keep: Iterable[str] = ()) -> None:
        kept = set(keep)
        self.cut([host], [h for h in self.hosts if h != host and h not in kept])

    def lose(self, percent: int) -> None:
        """Drops ``percent`` % of the frames crossing the bridge, at random, on every link."""
        self._nft(f"add rule bridge {TABLE} forward numgen random mod 100 < {percent} drop")

    def heal(self) -> None:
        self._nft(f"flush chain bridge {TABLE} forward")

    def rules(self) -> str:
        return _run("ip", "netns", "exec", self.bridge_namespace, "nft", "list", "table",
                    "bridge", TABLE).stdout

    def exec_argv(self, host: str) -> list[str]:
        """The prefix that runs a command inside ``host``'s namespace."""
        return ["ip", "netns", "exec", self.namespace(host)]
