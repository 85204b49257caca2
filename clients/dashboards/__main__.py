"""Writes the console pages and Grafana dashboards under deploy/ from the definitions.

    python -m clients.dashboards          # rewrite them (review the diff)
    python -m clients.dashboards --check  # exit 1 if a written file is stale
"""

from __future__ import annotations

import sys
from pathlib import Path

from clients.dashboards import consoles, grafana
from clients.dashboards.panels import PAGES

DEPLOY = Path(__file__).resolve().parent.parent.parent / "deploy"
CONSOLES = DEPLOY / "prometheus" / "consoles"
GRAFANA_DASHBOARDS = DEPLOY / "grafana" / "dashboards"


def rendered() -> dict[Path, str]:
    """Every generated file and its text."""
    files = {CONSOLES / f"{page.slug}.html": consoles.render(page) for page in PAGES}
    files.update({GRAFANA_DASHBOARDS / f"straits-{page.slug}.json": grafana.render(page)
                  for page in PAGES})
    return files


def main(argv: list[str]) -> int:
    stale = []
    for path, text in rendered().items():
        if "--check" in argv:
            if not path.exists() or path.read_text() != text:
                stale.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(path)
    for path in stale:
        print(f"stale: {path} (run python -m clients.dashboards)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
