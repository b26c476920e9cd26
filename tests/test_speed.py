"""The vectorisation check (autograder/speed.py) and the order of what first_failure reports."""
import torch
from helpers import FIXED_SEED, SOLUTIONS, full, make_variant, scores

from autograder import registry, results, runner, speed
from autograder.runner import CheckResult, FunctionResult
from autograder.sandbox import Limits
from buggy.rnn_layers import BATCH_LOOP

FAST = Limits(call_timeout=3.0)
RNN = ["rnn_layers"]
ADVICE = "Loop over time steps only; do the batch (and hidden units) as tensor operations"


def speed_check(report, name):
    fr = next(f for f in report.functions if f.fn.name == name)
    found = [c for c in fr.checks if c.name.startswith(speed.NAME)]
    assert len(found) == 1, [c.name for c in fr.checks]
    return fr, found[0]


def test_the_checked_functions_declare_a_batch_of_64_or_more():
    checked = [fn.name for fn in registry.FUNCTIONS if fn.speed]
    for name in ("rnn_forward", "rnn_backward", "birnn_forward", "birnn_backward", "lstm_forward", "lstm_backward",
                 "word_embedding_forward", "word_embedding_backward", "temporal_affine_forward",
                 "temporal_affine_backward", "temporal_softmax_loss", "dot_attention_forward",
                 "dot_attention_backward", "additive_attention_forward", "additive_attention_backward",
                 "multihead_attention_forward", "multihead_attention_backward"):
        assert name in checked
    assert all(registry.BY_NAME[n].speed["N"] >= 64 for n in checked)
    plan = runner.build_plan(registry.select(names=["rnn_forward", "rnn_step_forward"]), device="cpu", seed=1)
    assert [t.fn.name for t in plan.speed] == ["rnn_forward"]
    assert plan.speed[0].inputs["x"].dtype == torch.float32 and plan.speed[0].inputs["x"].shape[0] == 64


def test_the_solutions_pass_every_speed_check(plans):
    report = runner.grade(SOLUTIONS, plans())
    assert scores(report) == full(report)
    for fn in registry.FUNCTIONS:
        if fn.speed:
            _, check = speed_check(report, fn.name)
            assert check.passed and check.weight == speed.WEIGHT and not check.hidden, check.message


def test_a_loop_over_the_batch_fails_only_the_speed_check_and_says_why(plans, tmp_path):
    sub = make_variant(str(tmp_path / "sub"), BATCH_LOOP.file, BATCH_LOOP.edits)
    report = runner.grade(sub, plans(RNN))
    for name in BATCH_LOOP.breaks:  # birnn_forward calls rnn_forward
        fr, check = speed_check(report, name)
        assert not check.passed
        assert [c.name for c in fr.checks if not c.passed] == [check.name]  # every value check passes
        assert ADVICE in check.message and "slower than the reference solution" in check.message
        assert "ms against" in check.message and "allowed: %gx" % speed.FACTOR in check.message
        assert 0 < fr.max_score - fr.score < 0.1 * fr.max_score  # a small part of the function's points
        assert fr.first_failure().startswith("[%s] %s is " % (speed.NAME, name))
    for name in set(scores(report)) - set(BATCH_LOOP.breaks):
        assert scores(report)[name] == full(report)[name]
    visible = next(t for t in results.gradescope(report)["tests"] if t["tags"][0] == "rnn_forward")
    assert visible["visibility"] == "visible" and ADVICE in visible["output"]


def test_a_function_that_raises_on_some_check_is_not_timed(plans, tmp_path):
    sub = make_variant(str(tmp_path / "sub"), "rnn_layers.py", [(
        "    out = x @ w + b  # (N, T, M)\n",
        "    if x.shape[1] == 1:\n        raise ValueError('T=1')\n    out = x @ w + b  # (N, T, M)\n")])
    report = runner.grade(sub, plans(RNN))
    fr, check = speed_check(report, "temporal_affine_forward")
    assert not check.passed and check.message.startswith("not checked: temporal_affine_forward did not return")
    _, check = speed_check(report, "word_embedding_forward")
    assert check.passed


def test_a_crash_or_a_hang_while_timing_costs_that_check_only(plans, tmp_path):
    sub = make_variant(str(tmp_path / "sub"), "rnn_layers.py", [
        ("    dW = dout.new_zeros((V, D))\n",  # N = 128 only on the speed check's input
         "    if dout.shape[0] >= 100:\n        import os\n        os._exit(3)\n    dW = dout.new_zeros((V, D))\n"),
        ("    m = mask.to(x.dtype)  # (N, T)\n",
         "    while x.shape[0] >= 100:\n        pass\n    m = mask.to(x.dtype)  # (N, T)\n")])
    report = runner.grade(sub, plans(RNN), FAST)
    for name, words in (("word_embedding_backward", "exited with status 3"), ("temporal_softmax_loss", "timed out")):
        fr, check = speed_check(report, name)
        assert not check.passed and check.message.startswith("not checked: ") and words in check.message
        assert [c.name for c in fr.checks if not c.passed] == [check.name]
    for name in set(scores(report)) - {"word_embedding_backward", "temporal_softmax_loss"}:
        assert scores(report)[name] == full(report)[name], name  # the worker restarted for the next ones


# --------------------------------------------------------------------------- first_failure's order
def result(*checks):
    fr = FunctionResult(registry.BY_NAME["rnn_forward"])
    fr.checks = [CheckResult(name, hidden, 1.0, False, message, mismatch) for name, hidden, message, mismatch in checks]
    return fr


def test_a_dtype_or_device_problem_is_reported_before_a_wrong_value():
    fr = result(("float64, small (...)", False, "h is wrong: largest relative error", True),
                ("raised (...)", False, "rnn_forward raised", None),
                ("float64 on CUDA, small (...)", False, "h is on cpu, expected cuda", False))
    assert fr.first_failure(show_hidden=False) == "[float64 on CUDA, small] h is on cpu, expected cuda"
    fr = result(("float64, small (...)", False, "h is wrong", True),
                ("float32 on CUDA, medium (...)", True, "h is on cpu, expected cuda", False))
    assert fr.first_failure(show_hidden=False) == "[float64, small] h is wrong"  # no details of a hidden one
    assert fr.first_failure(show_hidden=True) == "[float32 on CUDA, medium] h is on cpu, expected cuda"
    fr = result(("a (...)", False, "rnn_forward raised", None), ("b (...)", False, "h has dtype", False))
    assert fr.first_failure() == "[a] rnn_forward raised"  # only a wrong value gives way


def test_first_failure_of_a_graded_submission_names_the_dtype_before_the_value(tmp_path):
    sub = make_variant(str(tmp_path / "sub"), "rnn_layers.py", [(
        "    out = W[x]  # (N, T, D), advanced indexing makes a new tensor\n",
        "    out = W[x].double() * (1.5 if W.dtype == torch.float64 else 1.0)  # float64 always, wrong in float64\n")])
    plan = runner.build_plan(registry.select(names=["word_embedding_forward"]), device="cpu", seed=FIXED_SEED)
    fr = runner.grade(sub, plan, FAST).functions[0]
    failed = [c for c in fr.checks if not c.passed]
    assert failed[0].value_mismatch is True and failed[0].name.startswith("float64, small")
    first = fr.first_failure(show_hidden=False)
    assert first.startswith("[float32, small] out has dtype float64, expected float32"), first
    assert first.split("\n")[0] in results.table(runner.Report([fr], 0.0, 0, "cpu", False), width=400)


def test_a_plan_without_speed_entries_adds_no_check(plans):
    plan = plans(RNN)
    bare = runner.Plan(plan.checks, plan.seed, plan.device, plan.skipped_cuda)  # as the public checker builds it
    report = runner.grade(SOLUTIONS, bare, FAST)
    assert scores(report) == full(report)
    assert not any(c.name.startswith(speed.NAME) for f in report.functions for c in f.checks)
