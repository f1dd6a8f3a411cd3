"""``python -m shopstack_dashboards``: write the dashboards' JSON; ``--check``: fail when the
committed JSON is not what the source generates."""

from __future__ import annotations

import argparse
import sys

from shopstack_dashboards.catalog import rendered, stale, write
from shopstack_dashboards.paths import CHART_COPIES, GENERATED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shopstack-dashboards", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only compare; change nothing")
    args = parser.parse_args(argv)
    files = rendered()
    if args.check:
        problems = stale(files)
        for problem in problems:
            print(f"stale dashboard JSON: {problem}", file=sys.stderr)
        if problems:
            print("run `make dashboards` and commit the result", file=sys.stderr)
        return 1 if problems else 0
    write(files)
    print(
        f"wrote the dashboards to {GENERATED}, their description to README.md and the chart's "
        f"copies to {CHART_COPIES}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
