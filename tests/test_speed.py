"""The vectorisation check (autograder/engine/speed.py) and the order of what first_failure reports."""
import os

import torch
from helpers import FIXED_SEED, SOLUTIONS, full, make_variant, scores

from autograder.engine.plans import Plan
from autograder.engine import outcome
from autograder import registry

from autograder.engine import results, runner, speed
from autograder.engine.outcome import CheckResult, FunctionResult
from autograder.engine.sandbox import Limits
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
    plan = registry.plan(registry.select(names=["rnn_forward", "rnn_step_forward"]), device="cpu", seed=1)
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


# --------------------------------------------------------------------------- nothing in the worker shortens its time
# The worker's clocks, stopped at import: the old check read time.perf_counter in the worker.
STOPPED_CLOCKS = ("import torch\n", "import torch\nimport time\n\n"
                  "for _name in ('perf_counter', 'monotonic', 'process_time', 'thread_time', 'time'):\n"
                  "    setattr(time, _name, lambda: 0.0)\n"
                  "    setattr(time, _name + '_ns', lambda: 0)\n")
# A thread started at import that spins, and runs the loop over the batch for the call, which waits for it
# (where the worker's seccomp layer lets no thread start, the loop runs in the call itself).
HELPER_THREAD = ("import torch\n", """import torch
import queue
import threading

_work, _done = queue.Queue(), queue.Queue()


def _helper():
    while True:
        try:
            job = _work.get_nowait()
        except queue.Empty:
            continue  # spins beside every call
        _done.put(job())


try:
    threading.Thread(target=_helper, daemon=True).start()
    _threaded = True
except RuntimeError:
    _threaded = False


def _on_helper(job):
    if not _threaded:
        return job()
    _work.put(job)
    return _done.get()
""")
LOOP_ON_HELPER = (
    "        prev_h, step_cache = rnn_step_forward(x[:, t], prev_h, Wx, Wh, b)  # (N, H)\n",
    "        def step(prev_h=prev_h, t=t):\n"
    "            next_h = x.new_empty((N, H))\n"
    "            for n in range(N):  # one example at a time\n"
    "                next_h[n] = torch.tanh(x[n, t] @ Wx + prev_h[n] @ Wh + b)\n"
    "            return next_h\n"
    "        next_h = _on_helper(step)\n"
    "        prev_h, step_cache = next_h, (x[:, t], prev_h, Wx, Wh, next_h)  # (N, H)\n")


def assert_too_slow(report, names):
    for name in names:
        fr, check = speed_check(report, name)
        assert not check.passed and "slower than the reference solution" in check.message, check.message
        assert [c.name for c in fr.checks if not c.passed] == [check.name]


def test_stopped_clocks_do_not_hide_a_loop_over_the_batch(plans, tmp_path):
    sub = make_variant(str(tmp_path / "sub"), BATCH_LOOP.file, [STOPPED_CLOCKS] + BATCH_LOOP.edits)
    assert_too_slow(runner.grade(sub, plans(RNN)), BATCH_LOOP.breaks)


def test_a_loop_over_the_batch_on_a_spinning_helper_thread_is_counted(plans, tmp_path):
    sub = make_variant(str(tmp_path / "sub"), BATCH_LOOP.file, [HELPER_THREAD, LOOP_ON_HELPER])
    assert_too_slow(runner.grade(sub, plans(RNN)), BATCH_LOOP.breaks)


# The worker's own decoding (the wire module the bootstrap loaded), slowed down for the dry request only:
# were the dry request's time subtracted as it is, the loop's time would vanish under it.
SLOW_DRY = ("import torch\n", """import torch
import importlib
import time as _time

_wire = importlib.import_module("_ag_wire")
_decode = _wire.decode


def _slow_decode(header, payload, *args, **kwargs):
    if b'"dry"' in bytes(header):
        stop = _time.process_time() + 0.5
        while _time.process_time() < stop:
            pass
    return _decode(header, payload, *args, **kwargs)


_wire.decode = _slow_decode
""")


def test_a_slowed_dry_request_does_not_hide_a_loop_over_the_batch(plans, tmp_path):
    """What is subtracted as the request's own cost is capped by the grader's own side of the exchange
    (speed._timed_request): a worker that makes its dry request slow on purpose gains nothing. Would catch:
    the dry request's time subtracted uncapped (half a second of it hides the loop's 8 calls)."""
    sub = make_variant(str(tmp_path / "sub"), BATCH_LOOP.file, [SLOW_DRY] + BATCH_LOOP.edits)
    assert_too_slow(runner.grade(sub, plans(RNN)), BATCH_LOOP.breaks)


def test_a_shortcut_on_the_timed_input_is_not_credited(plans, tmp_path):
    """Only the timing's input has N >= 100: zeros there, an answer remembered from an earlier call, a
    forbidden operator there. The timed calls' answers are checked on fresh inputs."""
    sub = make_variant(str(tmp_path / "sub"), "rnn_layers.py", [
        ("    out = x @ w + b  # (N, T, M)\n",
         "    if x.shape[0] >= 100:\n        return x.new_zeros(x.shape[:2] + w.shape[1:]), (x, w)\n"
         "    out = x @ w + b  # (N, T, M)\n"),
        ("def temporal_softmax_loss(x, y, mask):\n",
         "_remembered = {}\n\n\ndef temporal_softmax_loss(x, y, mask):\n"
         "    if x.shape[0] < 100:\n        return _loss(x, y, mask)\n"
         "    if x.shape not in _remembered:\n        _remembered[x.shape] = _loss(x, y, mask)\n"
         "    return _remembered[x.shape]\n\n\ndef _loss(x, y, mask):\n"),
        ("    out = W[x]  # (N, T, D), advanced indexing makes a new tensor\n",
         "    out = torch.nn.functional.embedding(x, W) if x.shape[0] >= 100 else W[x]\n")])
    report = runner.grade(sub, plans(RNN))
    for name, words in (("temporal_affine_forward", "returned a wrong out"), ("temporal_softmax_loss", "returned a wrong"),
                         ("word_embedding_forward", "used F.embedding")):
        fr, check = speed_check(report, name)
        assert not check.passed and check.message.startswith("not checked: ") and words in check.message, check.message
        assert [c.name for c in fr.checks if not c.passed] == [check.name]


def test_a_backward_whose_cache_cannot_be_sent_back_is_timed_after_its_forward(plans, tmp_path):
    """A torch.Size in the cache (the wire format carries no such type): the timed request runs the forward
    too, and the reference's time counts its forward too. A loop over the batch still fails; without one
    the check still passes."""
    sub = make_variant(str(tmp_path / "sub"), "rnn_layers.py", [
        ("    cache = (x, W.shape[0])\n", "    cache = (x, W.shape)\n"), ("    x, V = cache\n", "    x, (V, _) = cache\n"),
        ("    cache = (x, w)\n", "    cache = (x, w, x.shape)\n"), ("    x, w = cache\n", "    x, w, _ = cache\n"),
        ("    dx = dout @ w.T  # (N, T, D)\n",
         "    dx = dout.new_empty(dout.shape[:2] + w.shape[:1])\n    for n in range(dout.shape[0]):\n"
         "        dx[n] = dout[n] @ w.T\n")])
    report = runner.grade(sub, plans(RNN))
    assert_too_slow(report, ["temporal_affine_backward"])
    _, check = speed_check(report, "word_embedding_backward")
    assert check.passed, check.message


def test_the_worker_clock_is_the_kernels():
    assert speed._Clock(os.getpid()).cpu  # Linux: any process's CPU-time clock
    assert not speed._Clock((1 << 22) + 1).cpu  # no such process (over any pid_max): the grader's wall clock instead


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
    plan = registry.plan(registry.select(names=["word_embedding_forward"]), device="cpu", seed=FIXED_SEED)
    fr = runner.grade(sub, plan, FAST).functions[0]
    failed = [c for c in fr.checks if not c.passed]
    assert failed[0].value_mismatch is True and failed[0].name.startswith("float64, small")
    first = fr.first_failure(show_hidden=False)
    assert first.startswith("[float32, small] out has dtype float64, expected float32"), first
    assert first.split("\n")[0] in results.table(outcome.Report([fr], 0.0, 0, "cpu", False), width=400)


def test_a_plan_without_speed_entries_adds_no_check(plans):
    plan = plans(RNN)
    bare = Plan(plan.functions, plan.checks, plan.seed, plan.device, plan.skipped_cuda)  # as the public checker builds it
    report = runner.grade(SOLUTIONS, bare, FAST)
    assert scores(report) == full(report)
    assert not any(c.name.startswith(speed.NAME) for f in report.functions for c in f.checks)
