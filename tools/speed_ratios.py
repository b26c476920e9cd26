"""The vectorisation check's ratios (student / reference, as speed.check computes them) over repeated gradings.

    python tools/speed_ratios.py RUNS LOG [SUBMISSION [--track numpy]]

grades SUBMISSION (default: solutions/torch, the reference graded as a student; with --track numpy,
solutions/numpy) RUNS times, each in a fresh
process through the command line (`python -m autograder grade SUBMISSION --no-instructor-tests`),
appends one JSON line per timed function to LOG ({"run", "fn", "mine", "theirs", "calls", "ratio"};
"error" instead where the check was not run to its end), and prints each function's worst, median and
best ratio and the worst over all. Run it inside a cgroup to grade under a CPU quota (README,
"vectorised"). Every grading's results.json goes to a temporary folder.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def one(log, run, submission, out, track="torch"):
    """In the child: grade once, with speed.measure wrapped to append its figures to `log`."""
    sys.path.insert(0, ROOT)
    from autograder import cli
    from autograder.engine import speed

    measure = speed.measure

    def logged(session, timing, deadline):
        row = {"run": run, "fn": timing.fn.name}
        try:
            mine, theirs, calls = measure(session, timing, deadline)
        except Exception as e:
            row["error"] = "%s: %s" % (type(e).__name__, e)
            raise
        finally:
            if "error" not in row:
                row.update(mine=mine, theirs=theirs, calls=calls, ratio=mine / max(theirs, speed.FLOOR))
            with open(log, "a") as f:
                f.write(json.dumps(row) + "\n")
        return mine, theirs, calls

    speed.measure = logged
    return cli.main(["grade", submission, "--no-instructor-tests", "--track", track, "-o", out])


def summary(log):
    rows = [json.loads(line) for line in open(log)]
    by_fn = {}
    for r in rows:
        by_fn.setdefault(r["fn"], []).append(r)
    print("%-30s %5s %7s %7s %7s %s" % ("function", "runs", "worst", "median", "best", "not run"))
    worst = (0.0, None)
    for name, rs in by_fn.items():
        ratios = [r["ratio"] for r in rs if "ratio" in r]
        errors = [r["error"] for r in rs if "error" in r]
        if ratios:
            print("%-30s %5d %7.2f %7.2f %7.2f %d" % (name, len(ratios), max(ratios), statistics.median(ratios),
                                                     min(ratios), len(errors)))
            worst = max(worst, (max(ratios), name))
        for e in sorted(set(errors)):
            print("    not run: %s" % e)
    runs = len({r["run"] for r in rows})
    print("%d gradings; worst ratio %.2f (%s)" % (runs, worst[0], worst[1]))


def main(argv):
    track = "torch"
    if "--track" in argv:
        at = argv.index("--track")
        track, argv = argv[at + 1], argv[:at] + argv[at + 2:]
    if argv[:1] == ["--one"]:
        _, log, run, submission, out = argv
        return one(log, int(run), submission, out, track)
    runs, log = int(argv[0]), argv[1]
    submission = argv[2] if len(argv) > 2 else os.path.join(ROOT, "solutions", track)
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(runs):
            code = subprocess.call([sys.executable, os.path.abspath(__file__), "--one", log, str(run), submission,
                                    os.path.join(tmp, "results.json"), "--track", track], cwd=ROOT,
                                   stdout=subprocess.DEVNULL)
            if code not in (0, 1):
                print("run %d: exit status %d" % (run, code), file=sys.stderr)
    summary(log)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
