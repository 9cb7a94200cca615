-- Offending rows: a missing, zero or negative price.
SELECT ticker, bar_start, open, high, low, close
FROM polygon_parquet_fp
WHERE dt BETWEEN :start_dt AND :end_dt
  AND (open IS NULL OR high IS NULL OR low IS NULL OR close IS NULL
       OR open <= 0 OR high <= 0 OR low <= 0 OR close <= 0)
ORDER BY ticker, bar_start
