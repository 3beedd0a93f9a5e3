"""`python -m fuzz`: fuzz every listener of a fresh gateway.

    python -m fuzz --seconds 60 --seed 1      a fixed-seed bounded run (what the test suite runs)
    python -m fuzz --minutes 480              a night (the seed is printed; give it again to repeat)
    python -m fuzz --replay fuzz-out/failure-1-00017-coap.txt

Exit code 0 when every check passed, 1 when something failed (see the
failure files in --out), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Sequence

from fuzz.runner import replay, run
from fuzz.targets import TARGETS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description="Fuzz every RosettaMQ listener.")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--seconds", type=float, help="how long to fuzz (default 60)")
    length.add_argument("--minutes", type=float, help="how long to fuzz, for long runs")
    length.add_argument("--replay", type=Path, metavar="FILE", help="replay a failure file instead of fuzzing")
    parser.add_argument("--seed", type=int, help="seed of the inputs (default: a random one, printed)")
    parser.add_argument("--out", type=Path, default=Path("fuzz-out"), help="failure files and the gateway's log")
    parser.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated subset of {','.join(TARGETS)}")
    parser.add_argument("--batch", type=int, default=25, help="inputs per batch between checks")
    parser.add_argument("--probe-timeout", type=float, default=1.0, help="seconds a normal client's round trip may take")
    parser.add_argument("--max-rss-growth-mb", type=int, default=256, help="allowed RSS growth over the start")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.replay is not None:
        findings = replay(args.replay, args.out, args.probe_timeout)
        print("\n".join(findings) if findings else "no failure: the inputs pass every check now")
        return 1 if findings else 0
    targets = [name.strip() for name in args.targets.split(",") if name.strip()]
    unknown = [name for name in targets if name not in TARGETS]
    if unknown or not targets:
        print(f"unknown targets {unknown}; choose from {', '.join(TARGETS)}", file=sys.stderr)
        return 2
    seconds = args.minutes * 60 if args.minutes is not None else args.seconds if args.seconds is not None else 60.0
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    print(f"fuzzing {', '.join(targets)} for {seconds:.0f} s with --seed {seed}; out: {args.out}", flush=True)
    report = run(seconds, seed, args.out, targets, batch=args.batch, probe_timeout=args.probe_timeout,
                 max_rss_growth=args.max_rss_growth_mb * 1024 * 1024, progress=lambda line: print(line, flush=True))
    print(report.to_json() if args.json else report.summary())
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
