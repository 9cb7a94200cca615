"""magsev_dagster: the Polygon.io -> S3 -> Glue -> Athena -> Grafana pipeline as Dagster assets."""
