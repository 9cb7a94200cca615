-- Hourly price variance per ticker: high - low of each 1-hour bar (the seed dashboard's panel).
SELECT bar_start AS "time", ticker, price_range
FROM hourly_price_variance
WHERE $__timeFilter(bar_start)
  AND dt BETWEEN '${__from:date:YYYY-MM-DD}' AND '${__to:date:YYYY-MM-DD}'
  AND ticker IN (${ticker:singlequote})
ORDER BY 1, 2
