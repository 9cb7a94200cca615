"""`python -m magsev_dagster.migrate`: convert raw bars of the old hourly layout, without any API call.

Earlier versions wrote one object per (ticker, hour): raw/polygon_raw/ticker=<T>/dt=<day>/<hour>.jsonl.
This version reads one object per day holding every ticker: raw/polygon_raw/dt=<day>/bars.jsonl.
Each day is converted on its own: its new object is written first (merged with one a newer run may
already have written - the newer bar wins), then its old objects are deleted, so an interrupted
conversion is finished by running it again. Response bodies under raw/responses/ stay as they are.
Works on whatever MAGSEV_ENV selects (the data dir locally, the bucket on AWS).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict

from magsev_dagster import layout
from magsev_dagster.resources.storage import RawStore
from magsev_dagster.tickers import validate_ticker

LEGACY_KEY = re.compile(
    rf"^{re.escape(layout.LEGACY_RAW_PREFIX)}(?P<ticker>[^/]+)/dt=(?P<day>\d{{4}}-\d{{2}}-\d{{2}})/[^/]+\.jsonl$"
)


def legacy_objects(storage: RawStore) -> dict[str, list[tuple[str, str]]]:
    """day -> [(ticker, key)] of the old layout's bar objects."""
    by_day: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key in storage.list(layout.RAW_TABLE_PREFIX + "/"):
        match = LEGACY_KEY.match(key)
        if match:
            by_day[match["day"]].append((validate_ticker(match["ticker"]), key))
    return dict(by_day)


def _bars(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def convert_day(storage: RawStore, day: str, objects: list[tuple[str, str]]) -> int:
    """Write the day's one object from its old ones, then delete those; returns the bars written."""
    merged: dict[tuple[str, int], dict] = {}
    for ticker, key in sorted(objects):
        for bar in _bars(storage.get(key)):
            merged.setdefault((ticker, bar["t"]), {"ticker": ticker, **bar})
    new_key = layout.raw_bars_key(day)
    if storage.exists(new_key):  # written by this version after the old objects: newer, so it wins
        merged.update({(bar["ticker"], bar["t"]): bar for bar in _bars(storage.get(new_key))})
    lines = [json.dumps(merged[k], separators=(",", ":")) for k in sorted(merged)]
    storage.put(new_key, ("\n".join(lines) + "\n").encode())
    storage.delete([key for _, key in objects])
    return len(lines)


def convert(storage: RawStore, dry_run: bool = False, log=print) -> dict:
    by_day = legacy_objects(storage)
    totals = {"days": len(by_day), "old_objects": sum(map(len, by_day.values())), "bars": 0}
    for day in sorted(by_day):
        if dry_run:
            log(f"{day}: {len(by_day[day])} objects would become {layout.raw_bars_key(day)}")
            continue
        totals["bars"] += convert_day(storage, day, by_day[day])
    return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="list what would be converted, change nothing")
    args = parser.parse_args(argv)
    from magsev_dagster.resources import resources_for
    from magsev_dagster.settings import Settings

    storage = resources_for(Settings.from_env())["storage"]
    totals = convert(storage, dry_run=args.dry_run)
    verb = "would convert" if args.dry_run else "converted"
    print(
        f"{verb} {totals['old_objects']} objects of {totals['days']} days "
        f"under {storage.uri(layout.RAW_TABLE_PREFIX)}"
        + ("" if args.dry_run else f" into one object per day ({totals['bars']} bars)")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
