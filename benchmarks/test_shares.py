"""Each test file's share of a `make test` run, from its pytest log with `--durations=0`.

    CI=true PYTEST_ADDOPTS="--durations=0" bash .ci/run 2>&1 | tee ci.log
    python benchmarks/test_shares.py ci.log

Sums the setup, call and teardown seconds of every test by file (under pytest-xdist the workers overlap, so the
shares add up to more than the wall time) and prints a markdown table, largest first.
"""

import re
import sys
from collections import defaultdict

LINE = re.compile(r"^([0-9.]+)s (setup|call|teardown)\s+(tests/[^:]+)::")


def shares(lines) -> dict[str, float]:
    seconds = defaultdict(float)
    for line in lines:
        m = LINE.match(line.strip())
        if m:
            seconds[m.group(3)] += float(m.group(1))
    return dict(sorted(seconds.items(), key=lambda kv: -kv[1]))


def main(path: str) -> None:
    with open(path) as f:
        per_file = shares(f)
    total = sum(per_file.values())
    print("| test file | seconds (setup + call + teardown, summed over workers) | share |\n|---|---|---|")
    for name, s in per_file.items():
        print(f"| `{name}` | {s:.0f} | {s / total:.0%} |")
    print(f"| all | {total:.0f} | |")


if __name__ == "__main__":
    main(sys.argv[1])
