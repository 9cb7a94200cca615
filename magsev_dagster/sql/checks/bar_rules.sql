-- Every row rule of the parquet table judged in one scan of the run's days (checks.ROW_CHECKS): one row
-- per offending bar and rule (unique_bars: one per (ticker, bar start) stored more than once), at most
-- :sample_rows per rule, each carrying its rule's total count of offenders. No row: every rule passed.
-- A NULL comparison does not offend (ohlc_consistent judges bars with all four prices; prices_positive
-- reports the missing ones).
WITH bars AS (
    SELECT
        ticker, bar_start, bar_start_ms, dt, open, high, low, close, volume,
        count(*) OVER (PARTITION BY ticker, bar_start) AS copies,
        row_number() OVER (PARTITION BY ticker, bar_start ORDER BY bar_start_ms) AS copy_no
    FROM polygon_parquet_fp
    WHERE dt BETWEEN :start_dt AND :end_dt
),
offending AS (
    SELECT bars.*, judged.rule
    FROM bars
    CROSS JOIN UNNEST(ARRAY[
        CASE WHEN ticker IS NULL OR bar_start IS NULL OR bar_start_ms IS NULL THEN 'keys_not_null' END,
        CASE WHEN copies > 1 AND copy_no = 1 THEN 'unique_bars' END,
        CASE WHEN open IS NULL OR high IS NULL OR low IS NULL OR close IS NULL
                  OR open <= 0 OR high <= 0 OR low <= 0 OR close <= 0 THEN 'prices_positive' END,
        CASE WHEN low > least(open, close) OR high < greatest(open, close) OR low > high
             THEN 'ohlc_consistent' END,
        CASE WHEN volume IS NULL OR volume < 0 THEN 'volume_non_negative' END
    ]) AS judged (rule)
    WHERE judged.rule IS NOT NULL
),
ranked AS (
    SELECT
        rule, ticker, bar_start, dt, open, high, low, close, volume, copies,
        count(*) OVER (PARTITION BY rule) AS offending_rows,
        row_number() OVER (PARTITION BY rule ORDER BY ticker, bar_start) AS sample_no
    FROM offending
)
SELECT rule, ticker, bar_start, dt, open, high, low, close, volume, copies, offending_rows
FROM ranked
WHERE sample_no <= :sample_rows
ORDER BY rule, ticker, bar_start
