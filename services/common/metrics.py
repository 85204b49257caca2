"""A node's Prometheus endpoint: its own registry, read at scrape time, served over HTTP.

Several nodes share one process in tests, so each node has its own
``CollectorRegistry`` (never the library's global one) and its own HTTP server.
Nothing is counted on the hot path: a ``Reading`` is a function the node's
collector calls when Prometheus scrapes, returning the metric families built from
counters and stats objects the node keeps anyway. Every Straits family carries the
labels ``node`` (participant id) and ``kind`` (validator, central_bank, bank), so a
series names its node even when scraped without target labels.

    endpoint = MetricsEndpoint.start(config, reading, histograms)  # None if metrics_port == 0
    endpoint.stop()

``scrape(address)`` reads any node's endpoint back (for benchmarks: CPU seconds and peak
memory per node).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import resource
import threading
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from services.common.config import NodeConfig

LABELS = ("node", "kind")
Reading = Callable[["Families"], None]


class Families:
    """The families of one scrape; every sample gets the node's labels first."""

    def __init__(self, labels: tuple[str, str]) -> None:
        self._labels = labels
        self.items: list[Metric] = []

    def gauge(self, name: str, doc: str, value: float) -> None:
        family = GaugeMetricFamily(name, doc, labels=LABELS)
        family.add_metric(self._labels, value)
        self.items.append(family)

    def counter(self, name: str, doc: str, value: float) -> None:
        family = CounterMetricFamily(name, doc, labels=LABELS)
        family.add_metric(self._labels, value)
        self.items.append(family)

    def counters(
        self, name: str, doc: str, labels: tuple[str, ...], values: Mapping[tuple[str, ...], float]
    ) -> None:
        """One counter family with a sample per key of ``values`` (values of ``labels``)."""
        family = CounterMetricFamily(name, doc, labels=(*LABELS, *labels))
        for key, value in sorted(values.items()):
            family.add_metric((*self._labels, *key), value)
        self.items.append(family)

    def gauges(
        self, name: str, doc: str, labels: tuple[str, ...], values: Mapping[tuple[str, ...], float]
    ) -> None:
        family = GaugeMetricFamily(name, doc, labels=(*LABELS, *labels))
        for key, value in sorted(values.items()):
            family.add_metric((*self._labels, *key), value)
        self.items.append(family)


def peak_rss_bytes() -> int:
    """The process's peak resident set size; Linux reports ``ru_maxrss`` in KiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _sqlite_memory_used() -> Callable[[], int] | None:
    """SQLite's own heap (page caches, statements) as the library counts it, read from the
    shared library the ``sqlite3`` module is linked to; None where it cannot be reached."""
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        return None
    try:
        used = ctypes.CDLL(name).sqlite3_memory_used
    except (OSError, AttributeError):
        return None
    used.restype = ctypes.c_int64
    return lambda: int(used())


SQLITE_MEMORY_USED = _sqlite_memory_used()


class NodeCollector(Collector):
    """Calls the node's reading at each scrape, and adds the process's CPU and memory."""

    def __init__(self, labels: tuple[str, str], reading: Reading) -> None:
        self._labels = labels
        self._reading = reading
        self._process = ProcessCollector(registry=None)

    def collect(self) -> Iterator[Metric]:
        # The process's current memory is read before its peak, so peak >= current.
        yield from _labelled(self._process.collect(), self._labels)
        families = Families(self._labels)
        self._reading(families)
        families.gauge(
            "straits_process_peak_resident_memory_bytes",
            "Peak resident memory of the node's process (getrusage ru_maxrss).",
            peak_rss_bytes(),
        )
        if SQLITE_MEMORY_USED is not None:
            # Separates the database's caches from the rest of the resident memory.
            families.gauge(
                "straits_process_sqlite_memory_bytes",
                "Memory SQLite holds in this process (page caches, statements).",
                SQLITE_MEMORY_USED(),
            )
        yield from families.items


def _labelled(families: Iterable[Metric], labels: tuple[str, str]) -> Iterator[Metric]:
    """The process collector's families with the node's labels added to each sample."""
    extra = dict(zip(LABELS, labels, strict=True))
    for family in families:
        family.samples = [s._replace(labels={**extra, **s.labels}) for s in family.samples]
        yield family


class MetricsEndpoint:
    """A node's registry and the HTTP server that serves it at ``/metrics``."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @classmethod
    def start(
        cls,
        config: NodeConfig,
        reading: Reading,
        extra: Callable[[CollectorRegistry], None] | None = None,
    ) -> MetricsEndpoint | None:
        """Serves on the host the node's gRPC server listens on and ``config.metrics_port``;
        None when the port is 0 (no endpoint). ``extra`` registers more metrics, such as
        histograms the node observes once per block."""
        if not config.metrics_port:
            return None
        labels = (config.id, config.kind.value)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(NodeCollector(labels, reading))
        if extra is not None:
            extra(registry)
        host = config.listen.rpartition(":")[0].strip("[]")
        server, thread = start_http_server(config.metrics_port, addr=host, registry=registry)
        return cls(server, thread)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def scrape(address: str, timeout: float = 10.0) -> list[Sample]:
    """Every sample ``http://address/metrics`` serves, parsed as Prometheus parses it."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=timeout) as response:
        text = response.read().decode()
    return [
        Sample(s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``; KeyError if none."""
    found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
    if not found:
        raise KeyError(f"expected a sample {name}{labels or ''}, found none")
    return sum(found)
