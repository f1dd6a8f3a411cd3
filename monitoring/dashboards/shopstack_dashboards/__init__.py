"""shopstack's Grafana dashboards as code (grafana-foundation-sdk), and what they are checked
against: the metric contract (``monitoring/METRICS.md``) and a PromQL reader."""
