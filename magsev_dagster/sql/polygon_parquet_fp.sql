-- polygon_parquet_fp: typed, de-duplicated hourly bars for the dt days of a run.
-- One row per (ticker, bar start); a bar seen twice in raw keeps its first copy.
SELECT ticker, bar_start, bar_start_ms, open, high, low, close, volume, vwap, trades, dt
FROM (
    SELECT
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
        dt,
        row_number() OVER (PARTITION BY ticker, t ORDER BY dt) AS copy_no
    FROM magsev_polygon_raw
    WHERE dt BETWEEN :start_dt AND :end_dt
) AS bars
WHERE copy_no = 1
