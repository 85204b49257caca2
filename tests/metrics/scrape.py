"""Reading a node's /metrics over HTTP, as Prometheus does, with the library's own parser."""

from __future__ import annotations

from services.common import metrics
from services.common.config import NodeConfig
from services.common.metrics import Sample
from services.network.prometheus import metrics_address


def scrape(config: NodeConfig) -> list[Sample]:
    return metrics.scrape(metrics_address(config))


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``; fails if none."""
    try:
        return metrics.value(samples, name, **labels)
    except KeyError as missing:
        raise AssertionError(f"{missing.args[0]} in the scrape") from None
