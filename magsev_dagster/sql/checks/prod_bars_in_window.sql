-- The (ticker, bar start) pairs published to production in the run's window.
SELECT ticker, bar_start_ms, count(*) AS copies
FROM polygon_hourly_prod
WHERE dt BETWEEN :start_dt AND :end_dt
  AND bar_start_ms >= :start_ms AND bar_start_ms < :end_ms
GROUP BY ticker, bar_start_ms
