"""The usual mistakes earn a hint that names them (issue 20, item 2).

Two measures, both on the grader's own feedback (runner.grade, as tests/test_buggy.py grades):

- the bug corpus (tests/buggy/): at least MIN_COVERAGE of the bugs that must lose points get a hint
  in the feedback of the function they break first (bug.breaks[0]); the unhinted ones are printed;
- the mistakes the write-up itself names (WRITEUP_MISTAKES, each quoted from handouts/writeup.md):
  every one gets its own hint.

A hint is a "Hint: " line of feedback.hints (a Mistake of the registry, or a generic hint of
compare.py). The generic hints that name no mistake ("it is right at t = ... and wrong at t = ...",
"it equals the expected value times 0.93" with no story for the factor) do not count. Errors, wrong
shapes or dtypes, inputs modified in place and the vectorisation check have their own messages, not
hints: such bugs count as unhinted here.

Cost: test_buggy grades each bug on every function of its file; here each bug is graded on one
function only (a plan of bug.breaks[0], built once per function; a backward's check calls its forward
from the same submission), and each submission once for both tests: about a fifth of test_buggy's time.
"""
import functools
import importlib
import os
import pkgutil
import re

import pytest
from helpers import FIXED_SEED, ROOT, make_variant, messages

import buggy
from buggy import Bug
from autograder import registry
from autograder.engine import runner

MIN_COVERAGE = 0.8
WRITEUP = os.path.join(ROOT, "handouts", "writeup.md")

CORPUS = []
for _info in pkgutil.iter_modules([os.path.dirname(buggy.__file__)]):
    CORPUS += importlib.import_module("buggy." + _info.name).BUGS
BY_NAME = {b.name: b for b in CORPUS}

R = "rnn_layers.py"
TANH_GRAD = "da = dnext_h * (1 - next_h * next_h)"
STEP_BWD = ["rnn_step_backward", "rnn_backward", "birnn_backward"]
SEQ_BWD = ["rnn_backward", "birnn_backward"]

# (what the write-up says, quoted; the bug as students write it; a phrase of the hint it must earn).
# Quotes are matched in handouts/writeup.md with whitespace normalised (test_the_writeup_still_names_them).
USUAL = "Part 1, Backpropagation through time: \"The usual mistakes: "
WRITEUP_MISTAKES = [
    (USUAL + "skipping the derivative of tanh", "skipping the derivative of tanh",
     Bug("write-up: tanh derivative skipped (da = dnext_h)", R, [(TANH_GRAD, "da = dnext_h")], STEP_BWD),
     "1 - next_h**2"),
    (USUAL + "skipping the derivative of tanh", "skipping the derivative of tanh",
     Bug("write-up: tanh's value instead of its derivative (da = dnext_h * next_h)", R,
         [(TANH_GRAD, "da = dnext_h * next_h")], STEP_BWD),
     "1 - next_h**2"),
    (USUAL + "forgetting the gradient that comes back from t+1",
     "forgetting the gradient that comes back from $t+1$",
     BY_NAME["gradient not carried between time steps"], "flows back from step t+1"),
    (USUAL + "overwriting the weight gradients at every step instead of adding them up",
     "overwriting the weight gradients at every step instead of adding them up",
     Bug("write-up: dWx overwritten at every step", R, [("dWx = dWx + dWx_t", "dWx = dWx_t")], SEQ_BWD),
     "added up over the time steps"),
    (USUAL + "overwriting the weight gradients at every step instead of adding them up",
     "overwriting the weight gradients at every step instead of adding them up",
     Bug("write-up: dWx, dWh and db overwritten at every step", R,
         [("dWx = dWx + dWx_t", "dWx = dWx_t"), ("dWh = dWh + dWh_t", "dWh = dWh_t"), ("db = db + db_t", "db = db_t")],
         SEQ_BWD),
     "added up over the time steps"),
    ("Part 1, Word embeddings: \"a plain indexed assignment dW[x] = dout keeps only one of them\"",
     "a plain indexed assignment `dW[x] = dout` keeps only one of them",
     BY_NAME["embedding gradient assigned instead of accumulated"], "occur several times"),
    ("Part 1, the temporal softmax loss: \"never compute e^s directly\"", "never compute $e^{s}$ directly",
     BY_NAME["unstable softmax (exp of raw scores)"], "exp overflowed"),
]

HINT = "Hint: "
# Generic hints that name no mistake (compare.value_hints): a partial match in time, a bare factor.
UNNAMED = re.compile(r"^(it is right at t = .* and wrong at t = .*|it equals the expected value times [^ ]+)$")


def named_hints(text):
    """The hints of a function's messages that name a mistake."""
    hints = [line.strip()[len(HINT):] for line in text.split("\n") if line.strip().startswith(HINT)]
    return [h for h in hints if not UNNAMED.match(h)]


@functools.lru_cache(maxsize=None)
def _plan(name):
    return registry.plan(registry.select(names=[name]), device="cpu", seed=FIXED_SEED)


_FEEDBACK = {}




def feedback(bug, tmp_path_factory):
    """The messages of bug.breaks[0], graded on that function alone (once per bug and session)."""
    key = (bug.file, tuple(bug.edits), bug.breaks[0])
    if key not in _FEEDBACK:
        sub = make_variant(str(tmp_path_factory.mktemp("hint") / "sub"), bug.file, bug.edits)
        _FEEDBACK[key] = messages(runner.grade(sub, _plan(bug.breaks[0])), bug.breaks[0])
    return _FEEDBACK[key]


def test_the_writeup_still_names_them():
    """Each quoted mistake is still in the write-up (if it changes, WRITEUP_MISTAKES follows it)."""
    with open(WRITEUP) as f:
        text = " ".join(f.read().split())
    for _, quote, _, _ in WRITEUP_MISTAKES:
        assert " ".join(quote.split()) in text, "no longer in handouts/writeup.md: %r" % quote


@pytest.mark.parametrize("where, quote, bug, hint", WRITEUP_MISTAKES, ids=[m[2].name for m in WRITEUP_MISTAKES])
def test_each_mistake_the_writeup_names_earns_its_hint(where, quote, bug, hint, tmp_path_factory, zygote):
    text = feedback(bug, tmp_path_factory)
    assert any(hint in h for h in named_hints(text)), (
        "the write-up names this mistake (%s) but %s gets no hint with %r:\n%s" % (where, bug.breaks[0], hint, text))


def test_most_of_the_corpus_earns_a_hint(tmp_path_factory, zygote):
    bugs = [b for b in CORPUS if b.breaks]
    unhinted = [b for b in bugs if not named_hints(feedback(b, tmp_path_factory))]
    coverage = 1 - len(unhinted) / len(bugs)
    report = "hint coverage: %d of %d bugs hinted (%.1f%%); unhinted:\n%s" % (
        len(bugs) - len(unhinted), len(bugs), 100 * coverage,
        "\n".join("  %s [%s] %s" % (b.file, b.breaks[0], b.name) for b in unhinted))
    print(report)
    assert coverage >= MIN_COVERAGE, report
