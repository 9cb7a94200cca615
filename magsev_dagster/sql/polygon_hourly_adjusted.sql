-- polygon_hourly_adjusted: production bars split-adjusted on read, to the share basis of today.
-- Production stores bars as traded, so a day once stored never changes; here every price is divided, and
-- every volume multiplied, by split_factor: the product of split_to / split_from over the ticker's splits
-- executed after the bar's trading day (1 when none), up to today: a split announced for a later day
-- counts from that day on. A split recorded later changes this view, not the stored days. The
-- *_as_traded columns keep the prices and volumes as they were traded.
-- The trading day is the UTC day of bar_start - 5 h: a NYSE session (04:00-20:00 New York, pre-market to
-- after-hours) then lies on one day, summer and winter (calendars.SESSION_DAY_SHIFT).
CREATE OR REPLACE VIEW polygon_hourly_adjusted AS
WITH split_days AS (
    SELECT ticker, execution_date, sum(ln(CAST(split_to AS DOUBLE) / split_from)) AS log_factor
    FROM polygon_splits
    WHERE execution_date <= CAST(current_date AS VARCHAR)
    GROUP BY ticker, execution_date
),
-- Each split closes a period of days: from the ticker's previous split (or ever) to the day before it.
-- Bars of that period are divided by this split and every later one.
split_periods AS (
    SELECT
        ticker,
        lag(execution_date) OVER (PARTITION BY ticker ORDER BY execution_date) AS period_start,
        execution_date AS period_end,
        round(exp(sum(log_factor) OVER (PARTITION BY ticker ORDER BY execution_date DESC)), 10) AS split_factor
    FROM split_days
),
bars AS (
    SELECT
        p.*,
        CAST(CAST(p.bar_start - INTERVAL '5' HOUR AS DATE) AS VARCHAR) AS trading_day
    FROM polygon_hourly_prod AS p
),
factored AS (
    SELECT b.*, coalesce(s.split_factor, 1.0) AS split_factor
    FROM bars AS b
    LEFT JOIN split_periods AS s
        ON s.ticker = b.ticker
        AND b.trading_day < s.period_end
        AND (s.period_start IS NULL OR b.trading_day >= s.period_start)
)
SELECT
    ticker,
    bar_start,
    bar_start_ms,
    dt,
    open / split_factor AS open,
    high / split_factor AS high,
    low / split_factor AS low,
    close / split_factor AS close,
    volume * split_factor AS volume,
    vwap / split_factor AS vwap,
    trades,
    split_factor,
    open AS open_as_traded,
    high AS high_as_traded,
    low AS low_as_traded,
    close AS close_as_traded,
    volume AS volume_as_traded,
    vwap AS vwap_as_traded
FROM factored
