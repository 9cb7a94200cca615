"""Scale and cost benchmarks of magsev_dagster (`make bench`); not timed tests, see benchmarks/README.md."""
