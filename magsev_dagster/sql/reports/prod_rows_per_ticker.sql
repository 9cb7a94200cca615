-- Production rows per ticker, with the first and last bar.
SELECT ticker, count(*) AS prod_rows, min(bar_start) AS first_bar, max(bar_start) AS last_bar
FROM polygon_hourly_prod
GROUP BY ticker
ORDER BY ticker
