-- Freshness and a QA re-check of production per ticker. Production only receives rows that passed
-- the blocking checks (write-audit-publish); this recounts, in the time range, the rows that would
-- fail them now: missing/non-positive prices, low/high inconsistent, negative volume, repeated bars
-- (on the split-adjusted bars every other panel shows).
SELECT last_bar, ticker, hours_behind, bars, qa_violations,
       CASE WHEN qa_violations = 0 THEN 'PASS' ELSE 'FAIL' END AS qa_status
FROM (
    SELECT
        max(bar_start) AS last_bar,
        ticker,
        date_diff('hour', max(bar_start), $__timeTo()) AS hours_behind,
        count(*) AS bars,
        CAST(count_if(bad) + count(*) - count(DISTINCT bar_start) AS BIGINT) AS qa_violations
    FROM (
        SELECT
            ticker,
            bar_start,
            open IS NULL OR high IS NULL OR low IS NULL OR close IS NULL
                OR least(open, high, low, close) <= 0
                OR low > least(open, close) OR high < greatest(open, close)
                OR volume IS NULL OR volume < 0 AS bad
        FROM polygon_hourly_adjusted
        WHERE $__timeFilter(bar_start)
          AND dt BETWEEN '${__from:date:YYYY-MM-DD}' AND '${__to:date:YYYY-MM-DD}'
          AND ticker IN (${ticker:singlequote})
    ) AS checked
    GROUP BY ticker
) AS per_ticker
ORDER BY ticker
