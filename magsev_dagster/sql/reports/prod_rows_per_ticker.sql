-- Production rows per ticker in the days :start_dt .. :end_dt, with the first and last bar.
SELECT ticker, count(*) AS prod_rows, min(bar_start) AS first_bar, max(bar_start) AS last_bar
FROM polygon_hourly_prod
WHERE dt BETWEEN :start_dt AND :end_dt
GROUP BY ticker
ORDER BY ticker
