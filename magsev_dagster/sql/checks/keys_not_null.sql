-- Offending rows: a bar without its key (ticker, bar start, dt).
SELECT ticker, bar_start, dt
FROM polygon_parquet_fp
WHERE dt BETWEEN :start_dt AND :end_dt
  AND (ticker IS NULL OR bar_start IS NULL OR bar_start_ms IS NULL)
ORDER BY ticker, bar_start
