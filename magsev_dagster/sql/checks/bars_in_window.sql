-- The (ticker, bar start) pairs present in the run's window, for the calendar comparison.
SELECT ticker, bar_start_ms, count(*) AS copies
FROM polygon_parquet_fp
WHERE dt BETWEEN :start_dt AND :end_dt
  AND bar_start_ms >= :start_ms AND bar_start_ms < :end_ms
GROUP BY ticker, bar_start_ms
