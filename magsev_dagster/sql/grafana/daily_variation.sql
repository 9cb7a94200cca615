-- Daily price variance normalized by price: the standard deviation of a day's hourly closes as %
-- of their mean (coefficient of variation), comparable across tickers of any price. Split-adjusted closes.
SELECT
    date_trunc('day', bar_start) AS "time",
    ticker,
    100 * stddev_samp(close) / avg(close) AS daily_variation_pct
FROM polygon_hourly_adjusted
WHERE $__timeFilter(bar_start)
  AND dt BETWEEN '${__from:date:YYYY-MM-DD}' AND '${__to:date:YYYY-MM-DD}'
  AND ticker IN (${ticker:singlequote})
GROUP BY date_trunc('day', bar_start), ticker
HAVING count(*) > 1
ORDER BY 1, 2
