-- hourly_price_variance: what the dashboard reads, per ticker per hour, split-adjusted.
-- price_range is the seed dashboard's "hourly price variance" (high - low); index_day puts tickers of very
-- different prices on one axis (100 = the ticker's first open of the dt day).
-- Every window partitions by dt, so a query of some days reads only those days (on Athena: only those
-- partitions). An index to the first bar of a range belongs to the query of that range (the panels').
-- open/high/low/close/volume and every measure are split-adjusted (polygon_hourly_adjusted), so a split
-- is no crash; the *_as_traded columns hold the prices and volume as traded, split_factor the divisor.
CREATE OR REPLACE VIEW hourly_price_variance AS
SELECT
    ticker,
    bar_start,
    dt,
    open,
    high,
    low,
    close,
    volume,
    high - low AS price_range,
    (high - low) / open * 100 AS range_pct,
    (close - open) / open * 100 AS change_pct,
    100 * close / first_value(open) OVER (PARTITION BY ticker, dt ORDER BY bar_start) AS index_day,
    split_factor,
    open_as_traded,
    high_as_traded,
    low_as_traded,
    close_as_traded,
    volume_as_traded
FROM polygon_hourly_adjusted
