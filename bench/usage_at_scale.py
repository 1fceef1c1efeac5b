"""Usage at scale (issue 14), on the real stack: 5,000 single usage reports to one org on the
Temporal dev server, and a 50,000-row usage file for a 50,000-user org through `billing usage
import` on the time-skipping server, both on PostgreSQL. Runs the two tests that check the
outcome (every report applied, the org still answering and renewing) and prints their figures.

    .venv/bin/python bench/usage_at_scale.py [REPORTS]
"""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    reports = sys.argv[1] if len(sys.argv) > 1 else "5000"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:randomly", "-p", "no:xdist",
         "tests/devserver/test_usage_updates.py", "tests/workflows/test_scale.py"],
        cwd=ROOT, env={**os.environ, "USAGE_UPDATES": reports}, capture_output=True, text=True)
    figures = re.findall(r"^.*(?:usage updates in|row import in).*$", result.stdout, re.MULTILINE)
    for line in figures:
        print(line.strip())
    if result.returncode:
        failures = [line for line in result.stdout.splitlines() if line.startswith(("E ", "FAILED"))]
        print("\n".join(failures[-20:]) or result.stderr[-2000:])
    print(result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-2000:])
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
