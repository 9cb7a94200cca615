"""`make bench`: every benchmark in turn; each prints its tables and merges into results.json.

    python -m benchmarks [--quick | --full] [--only backfill,increment,scale,aws_costs]
"""

from __future__ import annotations

import argparse
import time

from benchmarks import aws_costs, backfill, increment, scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small ranges (a few minutes)")
    size.add_argument("--full", action="store_true", help="the backfill as one real year-long run (slow)")
    parser.add_argument("--only", default="backfill,increment,scale,aws_costs")
    args = parser.parse_args()
    mode = "quick" if args.quick else "full" if args.full else "default"
    began = time.monotonic()
    for name in args.only.split(","):
        print(f"\n# benchmark: {name} ({mode})", flush=True)
        if name == "backfill":
            backfill.main(mode)
        elif name == "increment":
            increment.main(quick=args.quick)
        elif name == "scale":
            scale.main(quick=args.quick)
        elif name == "aws_costs":
            aws_costs.main()
        else:
            raise SystemExit(f"unknown benchmark {name!r}: choose from backfill, increment, scale, aws_costs")
    print(f"\nAll done in {time.monotonic() - began:.0f} s; results in benchmarks/results.json")


if __name__ == "__main__":
    main()
