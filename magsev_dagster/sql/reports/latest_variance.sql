-- The newest hour of hourly_price_variance for each ticker, in the days :start_dt .. :end_dt.
SELECT ticker, bar_start, round(price_range, 4) AS price_range, round(range_pct, 3) AS range_pct,
       round(change_pct, 3) AS change_pct, round(index_day, 2) AS index_day
FROM (
    SELECT *, row_number() OVER (PARTITION BY ticker ORDER BY bar_start DESC) AS newest_first
    FROM hourly_price_variance
    WHERE dt BETWEEN :start_dt AND :end_dt
) AS v
WHERE newest_first = 1
ORDER BY ticker
