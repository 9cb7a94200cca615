"""The Grafana dashboard as code: panel SQL (sql/grafana/), the SDK-built JSON, and its rendered picture."""
