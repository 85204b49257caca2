"""What an audit prints: a progress bar on stderr, then a summary table or JSON.

The JSON document lists findings per height (``{"height": 7, "findings": [{"check":
"state_root", "detail": "..."}]}``), so a script can name the first bad block.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import IO, Any

from clients.audit.auditor import Report
from clients.audit.compare import Difference

BAR = 30
REFRESH_S = 0.25


class ProgressBar:
    """``[#####.....] 1,200/2,400 blocks  830 blocks/s  41,500 tx/s`` on one line.

    On a terminal the line is redrawn in place at most every ``REFRESH_S``; elsewhere
    (a log, a test) only the last state is written, once, by ``done``.
    """

    def __init__(self, out: IO[str], label: str = "") -> None:
        self._out = out
        self._label = label
        self._live = out.isatty()
        self._started = time.perf_counter()
        self._shown = 0.0
        self._last = (0, 0, 0)

    def __call__(self, blocks: int, transactions: int, head: int) -> None:
        self._last = (blocks, transactions, head)
        now = time.perf_counter()
        if self._live and now - self._shown >= REFRESH_S:
            self._shown = now
            self._out.write("\r" + self.line())
            self._out.flush()

    def line(self) -> str:
        blocks, transactions, head = self._last
        seconds = max(time.perf_counter() - self._started, 1e-9)
        filled = BAR * blocks // head if head else BAR
        bar = "#" * filled + "." * (BAR - filled)
        label = f"{self._label} " if self._label else ""
        return (f"{label}[{bar}] {blocks:,}/{head:,} blocks  {blocks / seconds:,.0f} blocks/s  "
                f"{transactions / seconds:,.0f} tx/s")

    def done(self) -> None:
        self._out.write(("\r" if self._live else "") + self.line() + "\n")
        self._out.flush()


def record(report: Report) -> dict[str, Any]:
    by_height: dict[int, list[dict[str, str]]] = {}
    for finding in report.findings:
        by_height.setdefault(finding.height, []).append(
            {"check": finding.check, "detail": finding.detail})
    return {
        "source": report.source,
        "clean": report.clean,
        "head": report.head,
        "blocks": report.blocks,
        "transactions": report.transactions,
        "seconds": round(report.seconds, 3),
        "transactions_per_second": round(report.transactions / report.seconds, 1)
        if report.seconds else None,
        "first_bad_height": min(by_height) if by_height else None,
        "findings": [{"height": h, "findings": by_height[h]} for h in sorted(by_height)],
    }


def difference_record(difference: Difference) -> dict[str, Any]:
    return {"height": difference.height, "what": difference.what,
            "diverged": difference.diverged, "sources": dict(difference.sources)}


def summary(report: Report) -> str:
    """One row per check: how many blocks it examined and what it found."""
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    for finding in report.findings:
        counts[finding.check] = counts.get(finding.check, 0) + 1
        first.setdefault(finding.check, finding.height)
    rows = [("CHECK", "BLOCKS", "FINDINGS", "FIRST AT")]
    for check in report.checks:
        rows.append((check, f"{report.blocks:,}" if check != "head_state" else "head",
                     f"{counts.get(check, 0):,}", str(first.get(check, ""))))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    rate = report.transactions / report.seconds if report.seconds else 0.0
    verdict = "clean" if report.clean else f"{len(report.findings)} finding(s)"
    lines.append("")
    lines.append(f"{report.source}: {report.blocks:,} blocks, {report.transactions:,} "
                 f"transactions to height {report.head:,} in {report.seconds:.1f} s "
                 f"({rate:,.0f} tx/s): {verdict}")
    return "\n".join(lines)


def findings_text(report: Report, limit: int = 50) -> str:
    lines = [f"  block {f.height}: {f.check}: {f.detail}" for f in report.findings[:limit]]
    if len(report.findings) > limit:
        lines.append(f"  ... and {len(report.findings) - limit} more (--json lists them all)")
    return "\n".join(lines)


def differences_text(differences: Sequence[Difference]) -> str:
    if not differences:
        return "the sources agree on every block they all hold"
    lines = []
    for d in differences:
        held = ", ".join(f"{name}: {value}" for name, value in d.sources)
        lines.append(f"  block {d.height}: {d.what} differs ({held})")
    return "\n".join(lines)
