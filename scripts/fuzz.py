#!/usr/bin/env python3
"""The dedicated fuzz run: every target of tests/test_fuzz.py with many generated inputs.

    .venv/bin/python scripts/fuzz.py --examples 3000      # 5 targets -> >= 15,000 inputs

Prints how many inputs each target checked; exits 1 if a target failed or the total
is below ``--min-total`` (10,000 by default).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=3000, help="generated inputs per target")
    parser.add_argument("--min-total", type=int, default=10_000, help="fail if fewer inputs were checked in all")
    args = parser.parse_args(argv)
    os.environ["SCIBOARD_FUZZ_EXAMPLES"] = str(args.examples)  # read when the targets are defined
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    import test_fuzz

    failures = 0
    for name, target in test_fuzz.TARGETS.items():
        started = time.monotonic()
        try:
            target()
            verdict = "ok"
        except Exception:  # noqa: BLE001  (report every target, then fail)
            failures += 1
            verdict = "FAILED\n" + traceback.format_exc()
        print(f"{name:32s} {test_fuzz.EXECUTED[name]:7d} inputs  {time.monotonic() - started:6.1f} s  {verdict}",
              flush=True)
    total = sum(test_fuzz.EXECUTED.values())
    print(f"{'total':32s} {total:7d} inputs")
    if total < args.min_total:
        print(f"fewer than {args.min_total} inputs were checked", file=sys.stderr)
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
