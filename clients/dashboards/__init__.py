"""The regulator's dashboards: one definition, rendered as Prometheus console pages and
as Grafana dashboards (``python -m clients.dashboards`` writes both under deploy/)."""
