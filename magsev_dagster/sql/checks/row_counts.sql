-- Rows in raw, distinct bars in raw (identical re-deliveries counted once), and rows in parquet,
-- for the run's dt days.
SELECT
    (SELECT count(*) FROM magsev_polygon_raw WHERE dt BETWEEN :start_dt AND :end_dt) AS raw_rows,
    (SELECT count(*) FROM (
        SELECT DISTINCT ticker, t, o, h, l, c, v, vw, n
        FROM magsev_polygon_raw
        WHERE dt BETWEEN :start_dt AND :end_dt
    ) AS distinct_bars) AS raw_bars,
    (SELECT count(*) FROM polygon_parquet_fp WHERE dt BETWEEN :start_dt AND :end_dt) AS parquet_rows
