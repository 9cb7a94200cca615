"""`make bench`: every benchmark in turn; each prints its tables and merges into results.json.

python -m benchmarks [--quick] [--only backfill,user_paths,scale,refresh,scans,trino_scans,aws_costs,aws_paths]
"""

from __future__ import annotations

import argparse
import time

from benchmarks import aws_costs, aws_paths, backfill, refresh, scale, scans, trino_scans, user_paths
from benchmarks.common import load_avg

BENCHMARKS = {
    "backfill": backfill.main,
    "user_paths": user_paths.main,
    "scale": scale.main,
    "refresh": refresh.main,
    "scans": scans.main,
    "trino_scans": trino_scans.main,
    "aws_costs": lambda quick: aws_costs.main(),
    "aws_paths": aws_paths.main,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller universes and ranges (~2 minutes)")
    parser.add_argument("--only", default=",".join(BENCHMARKS))
    args = parser.parse_args()
    names = args.only.split(",")
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}")
    began = time.monotonic()
    for name in names:
        print(f"\n# benchmark: {name} ({'quick' if args.quick else 'default'}), load average {load_avg()}", flush=True)
        BENCHMARKS[name](quick=args.quick)
    print(
        f"\nAll done in {time.monotonic() - began:.0f} s (load average {load_avg()}); "
        "results in benchmarks/results.json"
    )


if __name__ == "__main__":
    main()
