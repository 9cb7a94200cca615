-- Offending bars: the price moved from the ticker's previous bar (close) to this bar (open) by more than
-- :max_jump times, up or down, once the splits recorded between the two bars' trading days are taken out
-- (split_ratio: the product of their split_to / split_from; a 10-for-1 split explains a move to 1/10).
-- Bars of the run's days are compared with the bar before them, looked up from :lookback_dt.
WITH bars AS (
    SELECT
        ticker, bar_start, dt, open, close,
        CAST(CAST(bar_start - INTERVAL '5' HOUR AS DATE) AS VARCHAR) AS trading_day
    FROM polygon_hourly_prod
    WHERE dt BETWEEN :lookback_dt AND :end_dt
),
pairs AS (
    SELECT
        ticker, bar_start, dt, open, trading_day,
        lag(bar_start) OVER (PARTITION BY ticker ORDER BY bar_start) AS previous_bar_start,
        lag(close) OVER (PARTITION BY ticker ORDER BY bar_start) AS previous_close,
        lag(trading_day) OVER (PARTITION BY ticker ORDER BY bar_start) AS previous_trading_day
    FROM bars
),
explained AS (
    SELECT
        p.ticker, p.previous_bar_start, p.previous_close, p.bar_start, p.open,
        round(exp(coalesce(sum(ln(CAST(s.split_to AS DOUBLE) / s.split_from)), 0)), 10) AS split_ratio
    FROM pairs AS p
    LEFT JOIN polygon_splits AS s
        ON s.ticker = p.ticker
        AND s.execution_date > p.previous_trading_day
        AND s.execution_date <= p.trading_day
    WHERE p.dt BETWEEN :start_dt AND :end_dt
      AND p.previous_close > 0 AND p.open > 0
    GROUP BY p.ticker, p.previous_bar_start, p.previous_close, p.bar_start, p.open
)
SELECT
    ticker, previous_bar_start, previous_close, bar_start, open, split_ratio,
    open * split_ratio / previous_close AS unexplained_move
FROM explained
WHERE open * split_ratio / previous_close > :max_jump
   OR previous_close / (open * split_ratio) > :max_jump
ORDER BY ticker, bar_start
