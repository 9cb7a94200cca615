"""The `universe` resource: which tickers the graph ingests and which hours it expects bars for."""

from __future__ import annotations

import dagster as dg
from pydantic import field_validator

from magsev_dagster.settings import resource_field
from magsev_dagster.tickers import validate_ticker


class TickerUniverse(dg.ConfigurableResource):
    tickers: list[str]
    extended_hours: bool = resource_field("extended_hours")

    @field_validator("tickers")
    @classmethod
    def _valid(cls, tickers: list[str]) -> list[str]:
        if not tickers:
            raise ValueError("the ticker universe is empty")
        return [validate_ticker(t) for t in tickers]
