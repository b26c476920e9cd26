"""The grading loop's reading of a worker's answer (runner.evaluate, runner.run_check), without a worker.

Every field of an answer is the worker's, and student code can write a whole answer itself (see
tests/test_hostile_wire.py): whatever it holds costs that check, never the whole grading.
"""
import torch

from autograder.engine import runner
from autograder.engine.outcome import FunctionResult
from autograder.engine.plans import Prepared
from autograder.engine.wire import Received


def prepared(make_fn):
    fn = make_fn()
    x = torch.ones(2, 3, dtype=torch.float64)
    return Prepared(fn, fn.cases[0], 1, {"x": x, "h": x}, {"x": x, "h": x}, {"h_next": x.clone()}, fresh=True)


def evaluate(prep, resp):
    return runner.evaluate(prep, resp, {"modified": set()}, FunctionResult(prep.fn))


def test_a_right_answer_passes(make_fn):
    prep = prepared(make_fn)
    check = evaluate(prep, {"steps": [{"ok": True, "value": Received(torch.ones(2, 3, dtype=torch.float64),
                                                                      "cpu", False)}]})
    assert check.passed, check.message


def test_a_tensor_on_a_device_torch_cannot_name_fails_its_check(make_fn):
    prep = prepared(make_fn)
    check = evaluate(prep, {"steps": [{"ok": True, "value": Received(torch.ones(2, 3, dtype=torch.float64),
                                                                      "no-such-device" * 100, False)}]})
    assert not check.passed and "is on no-such-device" in check.message and len(check.message) < 300


def test_an_error_whose_fields_are_not_strings_fails_its_check(make_fn):
    prep = prepared(make_fn)
    error = {"type": 7, "message": ["a", "list"], "trace": {"not": "a string"}}
    check = evaluate(prep, {"steps": [{"ok": False, "error": error}]})
    assert not check.passed and "raised" in check.message and "not" in check.message


class _Worker:
    def __init__(self, answer):
        self.answer = answer

    def request(self, obj, timeout, what):
        return self.answer


class _Session:
    """What run_check uses of runner.Session: ensure, worker.request, strays, timeout, where."""

    def __init__(self, answer):
        self.worker = _Worker(answer)
        self.where = {}

    def ensure(self, module):
        return None

    def strays(self):
        return False

    def timeout(self):
        return 1.0


def test_an_answer_no_check_foresaw_costs_that_check_only(make_fn, monkeypatch):
    prep = prepared(make_fn)

    def unforeseen(*args):
        raise KeyError("an answer of a shape nobody thought of")

    monkeypatch.setattr(runner, "evaluate", unforeseen)
    fn = prep.fn
    check = runner.run_check(_Session({"steps": []}), prep, {"modified": set()}, FunctionResult(fn), {})
    assert not check.passed
    assert "could not read what %s returned (KeyError" % fn.name in check.message


def test_every_wrong_output_is_named(make_fn):
    """One wrong gradient and all of them wrong are different bugs: each wrong output is named."""
    fn = make_fn(returns=("dx", "dWx", "db"))
    x = torch.ones(2, 3, dtype=torch.float64)
    prep = Prepared(fn, fn.cases[0], 1, {"x": x, "h": x}, {"x": x, "h": x},
                    {"dx": x.clone(), "dWx": x.clone(), "db": x.clone()}, fresh=True)
    right, wrong = x.clone(), x * 3

    def answer(*values):
        return {"steps": [{"ok": True, "value": tuple(Received(v, "cpu", False) for v in values)}]}

    one = evaluate(prep, answer(right, wrong, right))
    assert not one.passed and one.message.startswith("dWx is wrong") and "Also wrong" not in one.message
    two = evaluate(prep, answer(right, wrong, wrong))
    assert "\nAlso wrong: db: largest relative error" in two.message and "Every output" not in two.message
    assert "expected 1, got 3" in two.message.split("Also wrong: db: ")[1]  # whole, never cut mid-number
    every = evaluate(prep, answer(wrong, wrong, wrong))
    assert "\nAlso wrong: dWx: " in every.message and "\nAlso wrong: db: " in every.message
    assert "Every output is wrong" in every.message


def test_a_failing_function_is_told_when_a_function_it_calls_fails_too(make_fn, tmp_path):
    from autograder.engine import submission
    from autograder.engine.outcome import CheckResult

    (tmp_path / "rnn_layers.py").write_text(
        "def rnn_step_forward(x, h):\n    return x\n\n"
        "def rnn_forward(x, h):\n    return rnn_step_forward(x, h)\n\n"
        "def rnn_backward(x, h):\n    return rnn_step_forward(x, h)\n")
    statuses = submission.locate(str(tmp_path), ["rnn_layers"])

    def result(name, passed):
        return FunctionResult(make_fn(name=name), [CheckResult("c", False, 1.0, passed, "" if passed else "x")])

    results = {"rnn_step_forward": result("rnn_step_forward", False), "rnn_forward": result("rnn_forward", False),
               "rnn_backward": result("rnn_backward", True)}
    runner._note_failing_callees(statuses, results)
    assert results["rnn_forward"].notes == [
        "rnn_forward calls your rnn_step_forward, which fails its own checks: fix rnn_step_forward first."]
    assert results["rnn_backward"].notes == []  # it passes: nothing to say
    assert results["rnn_step_forward"].notes == []
