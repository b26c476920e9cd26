"""Shared helpers of the kit's tests: variants of the solutions, grading, scores."""
import os
import shutil

from autograder import registry
from autograder.engine import outcome

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOLUTIONS = os.path.join(ROOT, "solutions", "torch")
ASSIGNMENT = os.path.join(ROOT, "assignment", "torch")
NP_SOLUTIONS = os.path.join(ROOT, "solutions", "numpy")  # the NumPy track's
NP_ASSIGNMENT = os.path.join(ROOT, "assignment", "numpy")
FIXED_SEED = 20261125  # hidden cases are fresh each real run; tests pin them for reproducibility


def copy_solutions(dst, src=SOLUTIONS):
    """A submission folder holding every reference solution file (src=ASSIGNMENT: every stub)."""
    os.makedirs(dst, exist_ok=True)
    for name in os.listdir(src):
        if name.endswith(".py"):
            shutil.copy(os.path.join(src, name), dst)
    return dst


def make_variant(dst, file, edits, src=SOLUTIONS):
    """The solutions (src: a track's folder) with `edits` [(old, new), ...] applied to `file` (each old must
    occur once)."""
    copy_solutions(dst, src)
    path = os.path.join(dst, file)
    with open(path) as f:
        text = f.read()
    for old, new in edits:
        count = text.count(old)
        assert count == 1, "edit target occurs %d times in %s (must be exactly once):\n%s" % (count, file, old)
        text = text.replace(old, new)
    with open(path, "w") as f:
        f.write(text)
    return dst


def write_submission(dst, files):
    """A submission folder with the given {name: text} files (no solutions)."""
    os.makedirs(dst, exist_ok=True)
    for name, text in files.items():
        mode = "wb" if isinstance(text, bytes) else "w"
        with open(os.path.join(dst, name), mode) as f:
            f.write(text)
    return dst


def scores(report):
    return {fr.fn.name: fr.score for fr in report.functions}


def full(report):
    return {fr.fn.name: fr.max_score for fr in report.functions}


def messages(report, name):
    fr = next(f for f in report.functions if f.fn.name == name)
    return "\n".join([c.message for c in fr.checks] + ([outcome.forbidden_message(fr.fn, fr.forbidden)] if fr.forbidden else []))


def plan_for_files(files, device="cpu", seed=FIXED_SEED, track="torch"):
    return registry.plan(registry.select(files=files), device=device, seed=seed, track=track)


def assert_breaks(bug, report):
    """A bug corpus's promise (tests/buggy/, tests/buggy_numpy/): the bug costs points on the functions it
    breaks and on no other, and the first of them gets its hint."""
    got, best = scores(report), full(report)
    for name in bug.breaks:
        assert got[name] < best[name], "%s should lose points on %s:\n%s" % (bug.name, name, messages(report, name))
    for name in set(got) - set(bug.breaks):
        assert got[name] == best[name], "%s should not cost points on %s:\n%s" % (bug.name, name, messages(report, name))
    if bug.hint:
        text = messages(report, bug.breaks[0])
        assert bug.hint in text, "expected %r in the feedback of %s:\n%s" % (bug.hint, bug.breaks[0], text)


def assert_corpus_size(bugs, least=15):
    """A bug corpus holds at least `least` bugs for every student file of the registry (a new one included)."""
    per_file = {}
    for bug in bugs:
        per_file[bug.file] = per_file.get(bug.file, 0) + 1
    for name in (f + ".py" for f in registry.FILES):
        assert per_file.get(name, 0) >= least, (name, per_file.get(name, 0))
