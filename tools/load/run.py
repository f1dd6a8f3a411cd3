"""`make load`: Locust headless for a bounded time against ``LOAD_URL``, or, when it is unset,
against a platform of its own (`make up` on free ports, in a temporary data dir, rate limits
off: every simulated user comes from this one address). Writes Locust's CSV and HTML reports
to ``LOAD_RESULTS`` (test-results/load/) and prints requests/s, failures and p50/p95 per
journey step. Exits with Locust's code: 1 when any request failed."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
LOCUSTFILE = HERE / "locustfile.py"
# What the platform this script starts runs with, beside `make up`'s defaults.
OWN_PLATFORM_ENV = {"GATEWAY_RATE_LIMIT__ENABLED": "false"}


def summary(stats_csv: Path) -> str:
    with stats_csv.open() as stats:
        rows = list(csv.DictReader(stats))
    header = ("journey: step", "requests", "req/s", "failures", "p50 ms", "p95 ms")
    lines = [header]
    for row in rows:
        name = "all" if row["Name"] == "Aggregated" else f"{row['Name']} ({row['Type']})"
        lines.append((name, row["Request Count"], f"{float(row['Requests/s']):.1f}",
                      row["Failure Count"], row["50%"], row["95%"]))  # fmt: skip
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in lines
    )


def run_locust(url: str, results: Path) -> int:
    results.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", url,
        "--users", os.environ.get("LOAD_USERS", "20"),
        "--spawn-rate", os.environ.get("LOAD_SPAWN_RATE", "5"),
        "--run-time", f"{os.environ.get('LOAD_DURATION', '60')}s",
        "--csv", str(results / "load"), "--html", str(results / "load.html"),
        "--only-summary", "--loglevel", "WARNING",
    ]  # fmt: skip
    print(f"load: {' '.join(command[3:])}", flush=True)
    code = subprocess.run(command, check=False).returncode  # noqa: S603 - our own command
    stats = results / "load_stats.csv"
    if stats.exists():
        print(summary(stats))
        print(f"reports: {results}/load.html, {results}/load_*.csv")
    return code


def main() -> int:
    results = Path(os.environ.get("LOAD_RESULTS", REPO / "test-results" / "load"))
    url = os.environ.get("LOAD_URL", "")
    with ExitStack() as stack:
        if not url:
            from shopstack_devstack.local_platform import LocalPlatform
            from shopstack_devstack.ports import free_port

            data_dir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="shopstack-load-"))
            )
            # Embedded PostgreSQL runs as its own user when this runs as root.
            data_dir.chmod(0o755)
            names = ("nginx", "gateway", "users", "orders", "postgres", "redis")
            platform = LocalPlatform(
                data_dir=data_dir / "devstack", ports={n: free_port() for n in names},
                extra_env=OWN_PLATFORM_ENV,
            )  # fmt: skip
            print("load: no LOAD_URL, starting a platform of its own", flush=True)
            platform.start()
            stack.callback(platform.stop)
            url = platform.url
        return run_locust(url, results)


if __name__ == "__main__":
    sys.exit(main())
