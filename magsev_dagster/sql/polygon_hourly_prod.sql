-- polygon_hourly_prod: the validated rows of the run's dt days, published after the blocking checks pass.
SELECT ticker, bar_start, bar_start_ms, open, high, low, close, volume, vwap, trades, dt
FROM polygon_parquet_fp
WHERE dt BETWEEN :start_dt AND :end_dt
