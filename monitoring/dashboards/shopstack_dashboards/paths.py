"""Where the monitoring files live: this package sits in ``monitoring/dashboards/``."""

from __future__ import annotations

from pathlib import Path

MONITORING = Path(__file__).resolve().parents[2]
GENERATED = MONITORING / "dashboards" / "generated"
METRICS_CONTRACT = MONITORING / "METRICS.md"
REPO = MONITORING.parent
# Helm reads only files inside the chart: the chart's copies of the rules, alerts and
# dashboards, written by `make dashboards` and checked like the generated JSON.
CHART_COPIES = REPO / "deploy" / "helm" / "shopstack" / "files" / "monitoring"
RULE_FOLDERS = ("rules", "alerts")
