"""Where the monitoring files live: this package sits in ``monitoring/dashboards/``."""

from __future__ import annotations

from pathlib import Path

MONITORING = Path(__file__).resolve().parents[2]
GENERATED = MONITORING / "dashboards" / "generated"
METRICS_CONTRACT = MONITORING / "METRICS.md"
