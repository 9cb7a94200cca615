"""The graph's tables: their names (the asset names) and columns, the same on DuckDB and on Athena.

Every backend, statement, check and policy reads these; the warehouses decide only where the rows live.
"""

RAW_TABLE = "magsev_polygon_raw"
PARQUET_TABLE = "polygon_parquet_fp"
PROD_TABLE = "polygon_hourly_prod"
VARIANCE_VIEW = "hourly_price_variance"
SPLITS_TABLE = "polygon_splits"
ADJUSTED_VIEW = "polygon_hourly_adjusted"

# The raw layer's JSON fields and their types; unknown extra fields stay in the raw objects.
RAW_COLUMNS = {
    "ticker": "VARCHAR",
    "t": "BIGINT",
    "o": "DOUBLE",
    "h": "DOUBLE",
    "l": "DOUBLE",
    "c": "DOUBLE",
    "v": "DOUBLE",
    "vw": "DOUBLE",
    "n": "BIGINT",
}
RAW_ORDER_BY = ("ticker", "t")  # a raw bar's key, the order of the raw table's preview
BAR_COLUMNS = {
    "ticker": "VARCHAR",
    "bar_start": "TIMESTAMP",
    "bar_start_ms": "BIGINT",
    "open": "DOUBLE",
    "high": "DOUBLE",
    "low": "DOUBLE",
    "close": "DOUBLE",
    "volume": "DOUBLE",
    "vwap": "DOUBLE",
    "trades": "BIGINT",
    "dt": "VARCHAR",
}
# Massive's split events (/stocks/v1/splits), every field it gives: execution_date is the first session
# at the new ratio (pre-market included), as 'YYYY-MM-DD' text so it compares with the `dt` days; the
# ratio is split_to for split_from shares (decimals: 1 -> 1.05 is a 5% stock dividend);
# historical_adjustment_factor multiplies a price dated before the event to today's share basis.
SPLIT_COLUMNS = {
    "ticker": "VARCHAR",
    "execution_date": "VARCHAR",
    "adjustment_type": "VARCHAR",
    "split_from": "DOUBLE",
    "split_to": "DOUBLE",
    "historical_adjustment_factor": "DOUBLE",
    "id": "VARCHAR",
}
