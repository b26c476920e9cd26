"""The NumPy track's bug corpus (tests/buggy_numpy/): every buggy variant of the NumPy reference solutions
loses points exactly on the functions it breaks, with its hint, and in NumPy's words (never torch's).
The twin of tests/test_buggy.py; the positive controls at the bottom are NumPy ways of returning a value
that are right and keep full marks."""
import dataclasses
import functools
import importlib
import os
import pkgutil
import re

import pytest
from helpers import assert_corpus_size, NP_SOLUTIONS, assert_breaks, full, make_variant, messages, plan_for_files, scores

import buggy_numpy
from autograder.engine import runner, speed
from buggy import Bug

BUGS = []
for info in pkgutil.iter_modules([os.path.dirname(buggy_numpy.__file__)]):
    BUGS += importlib.import_module("buggy_numpy." + info.name).BUGS

# What a NumPy student must never be told: torch's types, methods and keywords. torch.nn.LSTM and torch.nn.RNN
# may be named (the handout names them: their layouts are the ones to follow, or, for the LSTM's gate order,
# not to copy).
TORCH_ONLY = re.compile(r"tensor|\.clone\(\)|device=|\bdim=|(?<!\bnp)\.flip\(|\.index_add_?\(|\.masked_fill|\.unsqueeze\(|"
                        r"\.new_(zeros|empty|ones)\(|torch\.(?!nn\.(LSTM|RNN)\b)", re.IGNORECASE)

pytestmark = pytest.mark.usefixtures("zygote")  # conftest.py: workers forked from one zygote


@functools.lru_cache(maxsize=None)
def _plan(file, timed):
    """The NumPy track's plan of one file (built once), without the vectorisation checks unless `timed`: the
    corpus's bugs are wrong values, and the timings (which a loaded machine can tip) would only slow it down."""
    plan = plan_for_files([file], track="numpy")
    return plan if timed else dataclasses.replace(plan, speed=[])


def _timed(bug):
    """Whether the bug is about the vectorisation check (its hint is that check's advice)."""
    return bool(bug.hint) and bug.hint in speed.ADVICE


def torch_words(texts, source):
    """The lines of a bug's feedback that speak torch, but for the lines quoting the student's own code."""
    lines = [line.strip() for text in texts for line in text.split("\n")]
    return sorted({line for line in lines if line and TORCH_ONLY.search(line) and line not in source})


def test_corpus_is_large_enough():
    assert_corpus_size(BUGS)


def test_corpus_names_are_unique():
    names = [b.name for b in BUGS]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


@pytest.mark.parametrize("bug", BUGS, ids=[b.name for b in BUGS])
def test_bug_loses_points_only_where_it_breaks_in_numpys_words(bug, tmp_path):
    """Each bug costs points on the functions it breaks and on no other, with its hint; and nothing in its
    feedback speaks torch (a type, method or keyword), a quoted line of the student's own code aside."""
    sub = make_variant(str(tmp_path / "sub"), bug.file, bug.edits, src=NP_SOLUTIONS)
    with open(os.path.join(sub, bug.file)) as f:
        source = f.read()
    report = runner.grade(sub, _plan(bug.file[:-3], _timed(bug)))
    assert_breaks(bug, report)
    found = torch_words([messages(report, fr.fn.name) for fr in report.functions], source)
    assert not found, "%s: the feedback speaks torch to a NumPy student:\n%s" % (bug.name, "\n".join(found))


# ---------------------------------------------------------------------------------------- positive controls
R, T = "rnn_layers.py", "tbptt.py"
LOSS = "loss = x.dtype.type(-(m * picked).sum() / N)"
CONTROLS = [
    Bug("loss returned as a Python float", R, [(LOSS, "loss = float(-(m * picked).sum() / N)")], []),
    Bug("loss returned as a 0-dim array", R, [(LOSS, "loss = np.array(-(m * picked).sum() / N, dtype=x.dtype)")], []),
    Bug("loss returned as a 0-dim array by np.sum (no cast)", R, [(LOSS, "loss = np.asarray(-np.sum(m * picked) / N)")],
        []),
    Bug("truncated_bptt_grads' loss returned as an np.float32 scalar, not a 0-dim array", T,
        [("    h_last = h\n    # END SOLUTION\n    return loss, grads, h_last",
          "    h_last = h\n    loss = loss[()]  # a NumPy scalar\n    # END SOLUTION\n    return loss, grads, h_last")],
        []),
    Bug("truncated_bptt_grads' loss summed from a Python 0.0 (an np.float32 scalar)", T,
        [('loss = np.zeros((), dtype=params["W_out"].dtype)', "loss = 0.0")], []),
    Bug("clip_grad_norm's total norm returned as a 0-dim array", T,
        [("    # END SOLUTION\n    return clipped, total_norm",
          "    total_norm = np.asarray(total_norm)  # 0-dim\n    # END SOLUTION\n    return clipped, total_norm")],
        []),
    Bug("clip_grad_norm's total norm returned as a Python float", T,
        [("    # END SOLUTION\n    return clipped, total_norm",
          "    total_norm = float(total_norm)\n    # END SOLUTION\n    return clipped, total_norm")],
        []),
]


@pytest.mark.parametrize("control", CONTROLS, ids=[c.name for c in CONTROLS])
def test_numpy_scalars_and_floats_keep_full_marks(control, tmp_path):
    sub = make_variant(str(tmp_path / "sub"), control.file, control.edits, src=NP_SOLUTIONS)
    report = runner.grade(sub, _plan(control.file[:-3], False))
    got, best = scores(report), full(report)
    for name in got:
        assert got[name] == best[name], "%s should keep full marks on %s:\n%s" % (
            control.name, name, messages(report, name))
