"""`make test-gpu`: every GPU-dependent test in one command, then a summary.

Runs the tests marked `cuda` (tests/test_cuda.py: the solutions get full marks with every CUDA
check under the default memory limit, the stubs get zero, a lost device is the first thing the
student reads, forked workers start CUDA after the fork). Without a CUDA device they skip, and
the summary says so. Meant to finish in under 5 minutes on one GPU.

    make test-gpu                      # with the kit's .venv
    PYTHONPATH=. python3 tools/test_gpu.py   # with a machine's own CUDA build of torch
"""
import os
import platform
import sys
import time

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_SECONDS = 300


class Outcomes:
    def __init__(self):
        self.rows = []

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            self.rows.append((report.nodeid, report.outcome, report.duration))


def main(argv):
    print("torch %s, CUDA %s, Python %s" % (torch.__version__, torch.version.cuda, platform.python_version()))
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        print("device: %s, %.0f GiB, %d device(s)" % (p.name, p.total_memory / 2**30, torch.cuda.device_count()))
    else:
        print("device: none (the CUDA tests will skip)")
    outcomes = Outcomes()
    start = time.monotonic()
    code = pytest.main(["-q", "-m", "cuda", "-p", "no:cacheprovider", os.path.join(ROOT, "tests")] + argv,
                       plugins=[outcomes])
    seconds = time.monotonic() - start
    counts = {}
    for _, outcome, _ in outcomes.rows:
        counts[outcome] = counts.get(outcome, 0) + 1
    print("\n== make test-gpu summary ==")
    for nodeid, outcome, duration in outcomes.rows:
        print("  %-8s %6.1f s  %s" % (outcome, duration, nodeid.split("::")[-1]))
    print("  %s in %.0f s (target: under %d s)%s" % (
        ", ".join("%d %s" % (n, k) for k, n in sorted(counts.items())) or "no tests", seconds, TARGET_SECONDS,
        "" if torch.cuda.is_available() else "; no CUDA device: the GPU path was NOT checked"))
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
