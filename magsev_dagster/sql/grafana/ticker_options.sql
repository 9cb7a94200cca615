-- Values of the dashboard's `ticker` variable: tickers with production bars in the time range,
-- limited to the selected groups.
SELECT DISTINCT p.ticker
FROM polygon_hourly_prod AS p
LEFT JOIN magsev_ticker_groups ON magsev_ticker_groups.ticker = p.ticker
WHERE $__timeFilter(p.bar_start)
  AND p.dt BETWEEN '${__from:date:YYYY-MM-DD}' AND '${__to:date:YYYY-MM-DD}'
  AND coalesce(magsev_ticker_groups.ticker_group, 'other') IN (${group:singlequote})
ORDER BY 1
