"""``python -m clients.bench.core`` (``make bench-core``): benchmarks of the pure core.

Runs every section, prints one table and writes the figures to ``bench/core.json``.
A section is a function returning a dict whose ``rows`` (metric, value, unit, target)
go into the table; everything else in the dict goes into the JSON file as it is.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

from clients.bench import apply_store, iso20022, verifier

SECTIONS: dict[str, Callable[[], dict]] = {
    "verifier": verifier.run,
    "apply+store": apply_store.run,
    "iso20022": iso20022.run,
}

OUTPUT = Path("bench/core.json")


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_table(results: dict[str, dict]) -> None:
    lines = [("section", "metric", "value", "unit", "target")]
    for section, result in results.items():
        for row in result.get("rows", []):
            lines.append(
                (section, row["metric"], _format(row["value"]), row["unit"], row["target"])
            )
    widths = [max(len(line[i]) for line in lines) for i in range(5)]
    for n, line in enumerate(lines):
        print(
            "  ".join(
                cell.rjust(w) if i == 2 else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(line, widths, strict=True))
            ).rstrip()
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def main(
    sections: dict[str, Callable[[], dict]] = SECTIONS,
    output: Path = OUTPUT,
    command: str = "make bench-core",
) -> dict[str, dict]:
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results = {}
    for name, section in sections.items():
        print(f"running {name}...", file=sys.stderr, flush=True)
        results[name] = section()
    print_table(results)
    output.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "started": started,
        "command": command,
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": _cpu_model(),
            # Other work on the machine skews the figures; the load says how much there was.
            "load_average_at_start": os.getloadavg()[0],
        },
        "sections": results,
    }
    output.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {output}", file=sys.stderr)
    return results


if __name__ == "__main__":
    # ``python -m clients.bench.core [SECTION...]``: the named sections alone, or all.
    chosen = sys.argv[1:]
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        sys.exit(f"unknown section {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    main({name: SECTIONS[name] for name in chosen} or SECTIONS)
