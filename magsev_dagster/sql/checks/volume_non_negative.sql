-- Offending rows: a missing or negative volume.
SELECT ticker, bar_start, volume
FROM polygon_parquet_fp
WHERE dt BETWEEN :start_dt AND :end_dt
  AND (volume IS NULL OR volume < 0)
ORDER BY ticker, bar_start
