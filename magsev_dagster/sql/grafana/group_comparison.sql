-- Mag7 vs benchmarks vs crypto: the mean indexed close (100 = each ticker's first bar in the
-- time range) of a group's tickers per hour, split-adjusted. magsev_ticker_groups is generated from
-- tickers.GROUPS.
SELECT "time", ticker_group, avg(indexed_close) AS mean_indexed_close
FROM (
    SELECT
        p.bar_start AS "time",
        coalesce(magsev_ticker_groups.ticker_group, 'other') AS ticker_group,
        100 * p.close / first_value(p.open) OVER (PARTITION BY p.ticker ORDER BY p.bar_start) AS indexed_close
    FROM polygon_hourly_adjusted AS p
    LEFT JOIN magsev_ticker_groups ON magsev_ticker_groups.ticker = p.ticker
    WHERE $__timeFilter(p.bar_start)
      AND p.dt BETWEEN '${__from:date:YYYY-MM-DD}' AND '${__to:date:YYYY-MM-DD}'
) AS indexed
WHERE ticker_group IN (${group:singlequote})
GROUP BY "time", ticker_group
ORDER BY 1, 2
