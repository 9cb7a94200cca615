-- polygon_parquet_fp: typed hourly bars for the dt days of a run.
-- Identical re-deliveries of a bar collapse to one row (DISTINCT); two *different* bars for the
-- same (ticker, bar start) are kept, so the blocking unique_bars check stops them, never merged silently.
SELECT DISTINCT
    ticker,
    CAST(from_unixtime(t / 1000) AS TIMESTAMP) AS bar_start,
    CAST(t AS BIGINT) AS bar_start_ms,
    CAST(o AS DOUBLE) AS open,
    CAST(h AS DOUBLE) AS high,
    CAST(l AS DOUBLE) AS low,
    CAST(c AS DOUBLE) AS close,
    CAST(v AS DOUBLE) AS volume,
    CAST(vw AS DOUBLE) AS vwap,
    CAST(n AS BIGINT) AS trades,
    dt
FROM magsev_polygon_raw
WHERE dt BETWEEN :start_dt AND :end_dt
