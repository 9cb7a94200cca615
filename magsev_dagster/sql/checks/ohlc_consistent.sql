-- Offending rows: open or close outside the bar's [low, high] range.
SELECT ticker, bar_start, open, high, low, close
FROM polygon_parquet_fp
WHERE dt BETWEEN :start_dt AND :end_dt
  AND (low > least(open, close) OR high < greatest(open, close) OR low > high)
ORDER BY ticker, bar_start
