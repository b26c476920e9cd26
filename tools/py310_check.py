"""Prove the kit on Python 3.10, the Python of Gradescope's default image (Ubuntu 22.04).

Copies the working tree (tracked and untracked files, .gitignore'd ones left out) into DEST, a
folder outside the repository, and there runs `make setup PYTHON=<3.10>`, `make demo` (the
reference solutions must get full marks, the stubs zero), the portability test, the fast tier
(tests/unit, when it exists) and a few grading tests, all on the 3.10 virtual environment.
DEST/.venv is kept between runs: a second run only reinstalls when the requirements changed.

    python3 tools/py310_check.py DEST [--python python3.10] [-k "solutions or stubs"]

With pyenv, a python3.10 that is not the active version runs as PYENV_VERSION=3.10.13 python3.10
(or name it: --python ~/.pyenv/versions/3.10.13/bin/python3.10). Needs the package registry:
torch for 3.10 comes from it (the CUDA build, about 3 GB with its dependencies).
Exits non-zero on the first step that fails.
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import time

KIT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEEP = {".venv"}  # what a fresh copy leaves in DEST
GRADING_TESTS = "tests/test_grading.py"


def say(msg):
    print("py310_check: %s" % msg, flush=True)


def run(cmd, cwd, **kw):
    say("$ %s" % " ".join(cmd))
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, **kw)
    elapsed = time.monotonic() - start
    say("exit %d after %.0f s" % (proc.returncode, elapsed))
    if proc.returncode:
        sys.exit("py310_check: failed: %s" % " ".join(cmd))
    return elapsed


def copy_tree(dest):
    """DEST = the working tree as it is now (not HEAD), DEST/.venv kept."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=KIT,
                           check=True, capture_output=True).stdout.decode().split("\0")
    os.makedirs(dest, exist_ok=True)
    for name in os.listdir(dest):
        if name not in KEEP:
            path = os.path.join(dest, name)
            shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)
    count = 0
    for rel in sorted(set(filter(None, names))):
        src = os.path.join(KIT, rel)
        if not os.path.lexists(src):  # deleted in the working tree, not yet in git
            continue
        dst = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)
        count += 1
    say("copied %d files of %s into %s" % (count, KIT, dest))


def demo_scores(dest):
    out = {}
    for name in ("solutions", "assignment"):
        with open(os.path.join(dest, ".venv", "demo-%s.json" % name)) as f:
            data = json.load(f)
        tests = data.get("tests", [])
        out[name] = (data.get("score"), sum(t.get("max_score", 0) for t in tests))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dest", help="the folder to copy the kit into (outside the repository)")
    ap.add_argument("--python", default="python3.10", help="the Python 3.10 to build .venv with")
    ap.add_argument("-k", default="solutions or stubs", help="which tests of %s to run" % GRADING_TESTS)
    args = ap.parse_args(argv)
    dest = os.path.abspath(args.dest)
    if dest == KIT or dest.startswith(KIT + os.sep):
        ap.error("DEST must be outside the repository")
    version = subprocess.run([args.python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True)
    if version.returncode or version.stdout.strip() != "3.10":
        ap.error("%s is not a Python 3.10 (%s)" % (args.python, (version.stdout + version.stderr).strip()))

    copy_tree(dest)
    times = {"setup": run(["make", "setup", "PYTHON=%s" % args.python], dest)}
    py = os.path.join(dest, ".venv", "bin", "python")
    say(subprocess.run([py, "-c", "import sys, torch; print('Python', sys.version.split()[0], 'torch', "
                        "torch.__version__)"], capture_output=True, text=True).stdout.strip())
    for track in ("torch", "numpy"):  # both tracks' reference solutions and stubs (docs/tracks.md)
        times["demo " + track] = run(["make", "demo", "TRACK=" + track], dest)
        scores = demo_scores(dest)
        say("demo scores, %s track: solutions %s / %s, stubs %s / %s"
            % (track, *scores["solutions"], *scores["assignment"]))
        if scores["solutions"][0] != scores["solutions"][1] or not scores["solutions"][1]:
            sys.exit("py310_check: the %s track's reference solutions do not get full marks" % track)
        if scores["assignment"][0] != 0:
            sys.exit("py310_check: the %s track's stubs score %s, not 0" % (track, scores["assignment"][0]))
    tests = ["tests/test_portability.py"] + (["tests/unit"] if glob.glob(os.path.join(dest, "tests", "unit")) else [])
    tests += [t for t in ["tests/test_numpy_track.py"] if os.path.isfile(os.path.join(dest, t))]
    times["tests"] = run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], dest)
    if os.path.isfile(os.path.join(dest, GRADING_TESTS)) and args.k:
        times["grading tests"] = run([py, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", GRADING_TESTS,
                                      "-k", args.k], dest)
    say("all passed on Python 3.10: " + ", ".join("%s %.0f s" % kv for kv in times.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
