-- Close indexed to 100 at each ticker's first bar in the dashboard's time range, so tickers of
-- very different prices (NVDA, BTC) share one axis. Split-adjusted (polygon_hourly_adjusted): a split
-- inside the range is no crash.
SELECT
    bar_start AS "time",
    ticker,
    100 * close / first_value(open) OVER (PARTITION BY ticker ORDER BY bar_start) AS indexed_close
FROM polygon_hourly_adjusted
WHERE $__timeFilter(bar_start)
  AND dt BETWEEN '${__from:date:YYYY-MM-DD}' AND '${__to:date:YYYY-MM-DD}'
  AND ticker IN (${ticker:singlequote})
ORDER BY 1, 2
