-- The newest bar of each ticker in production, looking back from :since_dt (keeps the scan to recent days).
SELECT ticker, max(bar_start_ms) AS newest_ms
FROM polygon_hourly_prod
WHERE dt >= :since_dt
GROUP BY ticker
