"""The NumPy track's bug corpus (tests/buggy_numpy/): every buggy variant of the NumPy reference solutions
loses points exactly on the functions it breaks, with its hint, and in NumPy's words (never torch's).
The twin of tests/test_buggy.py; the positive controls at the bottom are NumPy ways of returning a value
that are right and keep full marks."""
import hashlib
import importlib
import json
import os
import pkgutil
import re

import pytest
from helpers import NP_SOLUTIONS, full, make_variant, messages, scores

import buggy_numpy
from autograder import registry
from autograder.engine import runner, speed
from buggy import Bug

BUGS = []
for info in pkgutil.iter_modules([os.path.dirname(buggy_numpy.__file__)]):
    BUGS += importlib.import_module("buggy_numpy." + info.name).BUGS

# What a NumPy student must never be told: torch's types, methods and keywords. torch.nn.LSTM and torch.nn.RNN
# may be named (the handout names them: their layouts are the ones to follow, or, for the LSTM's gate order,
# not to copy).
TORCH_ONLY = re.compile(r"tensor|\.clone\(\)|device=|\bdim=|\.flip\(|\.index_add_?\(|\.masked_fill|\.unsqueeze\(|"
                        r"\.new_(zeros|empty|ones)\(|torch\.(?!nn\.(LSTM|RNN)\b)", re.IGNORECASE)

# Bugs whose feedback still speaks torch (the grader's hints, not yet in NumPy's words; reported, not fixed
# here): xfail(strict), so that the entry goes once the grader's words are fixed.
TORCH_WORDS_KNOWN = {
    "BiRNN: backward states not flipped back": ".flip(1) in the hint",
    "BiRNN: backward RNN not run on reversed time": "x.flip(1) in the hint",
    "BiRNN backward: dx of the backward direction not re-flipped": ".flip(1) in the hint",
    "BiRNN backward: upstream gradient of the backward direction not flipped": "dh[:, :, H:].flip(1) in the hint",
    "embedding gradient assigned instead of accumulated": "dW.index_add_(...) in the hint",
    "embedding gradient with dW[x] += dout (buffered: repeated words counted once)": "dW.index_add_(...) in the hint",
    "tbptt: clipping each array by its own norm": "'each tensor', 'every tensor' in the hints",
    "tbptt: clipping element-wise (np.clip) instead of by norm": "'every tensor' in the hints",
    "tbptt: total norm as the sum of the arrays' norms": "'the tensors' norms' in the hint",
    "dot attention: softmax over the batch axis": "(dim=1) in the hint",
    "dot attention: mask ignored": "scores.masked_fill(~mask, ...) in the hint",
    "dot attention: masked scores multiplied by the mask": "scores.masked_fill(~mask, ...) in the hint",
    "additive attention: mask ignored": "scores.masked_fill(~mask, ...) in the hint",
    "multihead attention: mask ignored": "scores.masked_fill(~mask, ...) in the hint",
}


def _feedback_dir(tmp_path_factory):
    """A folder every xdist worker of the session shares: the feedback of each bug, graded once, is kept there
    for test_feedback_speaks_numpy (which a worker other than the grading one may run)."""
    root = tmp_path_factory.getbasetemp()
    root = root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root
    path = root / "numpy-corpus-feedback"
    path.mkdir(exist_ok=True)
    return path


def _key(bug):
    return hashlib.sha1(bug.name.encode()).hexdigest()[:16] + ".json"


def grade(bug, np_plans, tmp_path, tmp_path_factory):
    """(report, the buggy file's text) of bug, its feedback kept for test_feedback_speaks_numpy."""
    sub = make_variant(str(tmp_path / "sub"), bug.file, bug.edits, src=NP_SOLUTIONS)
    with open(os.path.join(sub, bug.file)) as f:
        source = f.read()
    report = runner.grade(sub, np_plans([bug.file[:-3]]))
    path = _feedback_dir(tmp_path_factory) / _key(bug)
    tmp = path.with_suffix(".%d.tmp" % os.getpid())
    tmp.write_text(json.dumps({"source": source,
                               "messages": {fr.fn.name: messages(report, fr.fn.name) for fr in report.functions}}))
    os.replace(tmp, path)
    return report, source


def feedback(bug, np_plans, tmp_path, tmp_path_factory):
    """{function: its messages} and the buggy file's text of bug: kept by an earlier grading, or graded now."""
    path = _feedback_dir(tmp_path_factory) / _key(bug)
    if not path.exists():
        grade(bug, np_plans, tmp_path, tmp_path_factory)
    data = json.loads(path.read_text())
    return data["messages"], data["source"]


def timing_noise(report, broken):
    """Whether a function the bug leaves alone lost points on its vectorisation check alone: the reference's
    own calls time within 10x of themselves, but not always on a machine that runs other tests beside."""
    for fr in report.functions:
        failed = [c for c in fr.checks if not c.passed]
        if fr.fn.name not in broken and failed and all(c.name.startswith(SPEED) for c in failed):
            return True
    return False


def torch_words(texts, source):
    """The lines of a bug's feedback that speak torch, but for the lines quoting the student's own code."""
    lines = [line.strip() for text in texts.values() for line in text.split("\n")]
    return sorted({line for line in lines if line and TORCH_ONLY.search(line) and line not in source})


def test_corpus_is_large_enough():
    per_file = {}
    for bug in BUGS:
        per_file[bug.file] = per_file.get(bug.file, 0) + 1
    for name in (f + ".py" for f in registry.FILES):  # every student file, a new one included
        assert per_file.get(name, 0) >= 15, (name, per_file.get(name, 0))


def test_corpus_names_are_unique():
    names = [b.name for b in BUGS]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    assert set(TORCH_WORDS_KNOWN) <= set(names), set(TORCH_WORDS_KNOWN) - set(names)


@pytest.mark.parametrize("bug", BUGS, ids=[b.name for b in BUGS])
def test_bug_loses_points_only_where_it_breaks(bug, np_plans, tmp_path, tmp_path_factory):
    report, _ = grade(bug, np_plans, tmp_path, tmp_path_factory)
    if timing_noise(report, bug.breaks):  # once more: a loaded machine, not the bug
        report, _ = grade(bug, np_plans, tmp_path / "again", tmp_path_factory)
    got, best = scores(report), full(report)
    for name in bug.breaks:
        assert got[name] < best[name], "%s should lose points on %s:\n%s" % (bug.name, name, messages(report, name))
    for name in set(got) - set(bug.breaks):
        assert got[name] == best[name], "%s should not cost points on %s:\n%s" % (bug.name, name, messages(report, name))
    if bug.hint:
        text = messages(report, bug.breaks[0])
        assert bug.hint in text, "expected %r in the feedback of %s:\n%s" % (bug.hint, bug.breaks[0], text)


FAILING = [b for b in BUGS if b.breaks]
SPEED = speed.NAME


@pytest.mark.parametrize("bug", [pytest.param(b, marks=pytest.mark.xfail(
    strict=True, reason="the grader's feedback speaks torch: %s" % TORCH_WORDS_KNOWN[b.name]))
    if b.name in TORCH_WORDS_KNOWN else b for b in FAILING], ids=[b.name for b in FAILING])
def test_feedback_speaks_numpy(bug, np_plans, tmp_path, tmp_path_factory):
    """No torch type, method or keyword in the feedback of a NumPy submission (a quoted line of the student's own
    code aside)."""
    texts, source = feedback(bug, np_plans, tmp_path, tmp_path_factory)
    found = torch_words(texts, source)
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
def test_numpy_scalars_and_floats_keep_full_marks(control, np_plans, tmp_path):
    sub = make_variant(str(tmp_path / "sub"), control.file, control.edits, src=NP_SOLUTIONS)
    report = runner.grade(sub, np_plans([control.file[:-3]]))
    got, best = scores(report), full(report)
    for name in got:
        assert got[name] == best[name], "%s should keep full marks on %s:\n%s" % (
            control.name, name, messages(report, name))
