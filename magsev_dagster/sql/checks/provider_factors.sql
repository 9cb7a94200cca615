-- Offending splits: Massive's historical_adjustment_factor (what a price dated before the event is
-- multiplied by to reach today's share basis) disagrees with the factor polygon_hourly_adjusted applies
-- to a bar of the day before the event: 1 / the product of split_to / split_from of this event and every
-- later one of the ticker executed up to today (polygon_hourly_adjusted.sql's split_periods, the same sum).
-- Massive rounds the factor to 6 decimals: a disagreement is more than 1e-4 relative, or 1e-6 absolute.
-- Events after today (the view does not apply them yet) and events without a factor are not judged.
WITH split_days AS (
    SELECT ticker, execution_date, sum(ln(CAST(split_to AS DOUBLE) / split_from)) AS log_factor
    FROM polygon_splits
    WHERE execution_date <= CAST(current_date AS VARCHAR)
    GROUP BY ticker, execution_date
),
view_factors AS (
    SELECT
        ticker, execution_date,
        exp(sum(log_factor) OVER (PARTITION BY ticker ORDER BY execution_date DESC)) AS split_factor
    FROM split_days
)
SELECT
    s.ticker, s.execution_date, s.adjustment_type, s.split_from, s.split_to, s.id,
    s.historical_adjustment_factor AS massive_factor,
    1 / v.split_factor AS view_factor
FROM polygon_splits AS s
JOIN view_factors AS v ON v.ticker = s.ticker AND v.execution_date = s.execution_date
WHERE s.historical_adjustment_factor IS NOT NULL
  AND abs(s.historical_adjustment_factor - 1 / v.split_factor)
      > greatest(1e-6, 1e-4 * (1 / v.split_factor))
ORDER BY s.ticker, s.execution_date
