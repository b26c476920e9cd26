"""The usual mistakes earn a hint in the NumPy track too (tests/test_hint_coverage.py's measure, on the NumPy corpus).

tests/buggy_numpy/ holds, per student file, SHARED (the torch corpus's kinds of mistakes, written in NumPy) and
NUMPY_OWN (np.zeros without dtype, `+=` on an argument, np.squeeze, float64 upcasts, a broadcast or shape error,
...). Only SHARED is measured against MIN_COVERAGE: NUMPY_OWN's mistakes are answered by the grader's own
messages for a wrong dtype or shape, an input modified in place or an error, which are no hints (see
test_hint_coverage.py); its coverage is printed. Where a SHARED bug has a torch twin of the same name
(tests/buggy/) that earns a hint, the NumPy one must earn one as well: a NumPy student is told no less.

Each bug is graded on bug.breaks[0] alone, as in test_hint_coverage.py (whose feedback cache the torch twins
share when both files run in one process).
"""
import functools
import importlib
import os
import pkgutil

import test_hint_coverage as base
from helpers import FIXED_SEED, NP_SOLUTIONS, make_variant, messages

import buggy_numpy
from autograder import registry
from autograder.engine import runner

SHARED, OWN = [], []
for _info in pkgutil.iter_modules([os.path.dirname(buggy_numpy.__file__)]):
    _module = importlib.import_module("buggy_numpy." + _info.name)
    SHARED += [b for b in _module.SHARED if b.breaks]
    OWN += [b for b in _module.NUMPY_OWN if b.breaks]
TORCH_TWINS = {b.name: b for b in base.CORPUS if b.breaks}


@functools.lru_cache(maxsize=None)
def _plan(name):
    return registry.plan(registry.select(names=[name]), device="cpu", seed=FIXED_SEED, track="numpy")


_FEEDBACK = {}




def feedback(bug, tmp_path_factory):
    """The messages of bug.breaks[0] in the NumPy track, graded on that function alone (once per bug and session)."""
    key = (bug.file, tuple(bug.edits), bug.breaks[0])
    if key not in _FEEDBACK:
        sub = make_variant(str(tmp_path_factory.mktemp("hint") / "sub"), bug.file, bug.edits, src=NP_SOLUTIONS)
        _FEEDBACK[key] = messages(runner.grade(sub, _plan(bug.breaks[0])), bug.breaks[0])
    return _FEEDBACK[key]


def _coverage(bugs, tmp_path_factory):
    unhinted = [b for b in bugs if not base.named_hints(feedback(b, tmp_path_factory))]
    coverage = 1 - len(unhinted) / len(bugs)
    report = "%d of %d bugs hinted (%.1f%%); unhinted:\n%s" % (
        len(bugs) - len(unhinted), len(bugs), 100 * coverage,
        "\n".join("  %s [%s] %s" % (b.file, b.breaks[0], b.name) for b in unhinted))
    return coverage, report


def test_most_of_the_numpy_corpus_earns_a_hint(tmp_path_factory, zygote):
    coverage, report = _coverage(SHARED, tmp_path_factory)
    print("NumPy track, the torch corpus's kinds of mistakes: hint coverage " + report)
    print("NumPy track, NumPy's own mistakes (dtype, shape, in-place and error messages; not measured): hint "
          "coverage " + _coverage(OWN, tmp_path_factory)[1])
    assert coverage >= base.MIN_COVERAGE, report


def test_numpy_twin_hinted_where_the_torch_twin_is(tmp_path_factory, zygote):
    """A SHARED bug whose torch twin earns a hint earns one in the NumPy track."""
    twins = [(b, TORCH_TWINS[b.name]) for b in SHARED if b.name in TORCH_TWINS]
    assert len(twins) >= 60, len(twins)  # most of SHARED keep their twin's name
    missing = ["  %s [%s] %s" % (b.file, b.breaks[0], b.name) for b, t in twins
               if base.named_hints(base.feedback(t, tmp_path_factory))
               and not base.named_hints(feedback(b, tmp_path_factory))]
    assert not missing, "hinted in the torch track, not in the NumPy track:\n" + "\n".join(missing)
