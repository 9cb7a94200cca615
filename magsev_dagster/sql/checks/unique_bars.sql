-- Offending rows: (ticker, bar start) pairs stored more than once.
SELECT ticker, bar_start, count(*) AS copies
FROM polygon_parquet_fp
WHERE dt BETWEEN :start_dt AND :end_dt
GROUP BY ticker, bar_start
HAVING count(*) > 1
ORDER BY ticker, bar_start
