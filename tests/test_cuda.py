"""CUDA: the same checks on the GPU (skipped cleanly without one). `make test-gpu` runs the marked ones."""
import pytest
import torch
from helpers import ASSIGNMENT, SOLUTIONS, full, make_variant, plan_for_files, scores

from autograder.engine import forkserver, results, runner, spec

from autograder import registry

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.cuda
@needs_cuda
def test_solutions_get_full_marks_including_the_cuda_checks():
    """Under the default memory limit: CUDA's own context must not count against the student."""
    plan = registry.plan(device="cuda", seed=7)
    assert any(p.case.device == "cuda" for p in plan.checks)
    report = runner.grade(SOLUTIONS, plan)
    assert scores(report) == full(report), [fr.first_failure() for fr in report.functions if fr.score < fr.max_score]


@pytest.mark.cuda
@needs_cuda
def test_stubs_get_zero_on_cuda_with_the_stub_message():
    report = runner.grade(ASSIGNMENT, plan_for_files(["rnn_layers"], device="cuda"))
    assert all(fr.score == 0 for fr in report.functions)
    assert all("not implemented" in fr.first_failure(show_hidden=False) for fr in report.functions)


@pytest.mark.cuda
@needs_cuda
def test_a_lost_device_is_what_the_student_reads_first(tmp_path):
    """rnn_step_forward adds a bias made on the CPU (the values are right): the public CUDA case says so
    in the visible feedback, before any hidden check."""
    sub = make_variant(str(tmp_path / "sub"), "rnn_layers.py", [
        ("next_h = torch.tanh(", "next_h = torch.zeros(1, dtype=x.dtype).cpu() + torch.tanh(")])
    report = runner.grade(sub, plan_for_files(["rnn_layers"], device="cuda"))
    fr = next(f for f in report.functions if f.fn.name == "rnn_step_forward")
    assert 0 < fr.score < fr.max_score
    shown = fr.first_failure(show_hidden=False)
    assert spec.CUDA_SMALL in shown and "is on cpu, expected cuda" in shown, shown
    visible = [t for t in results.gradescope(report)["tests"] if t.get("visibility") == "visible"]
    assert any("is on cpu, expected cuda" in t.get("output", "") for t in visible)


@pytest.mark.cuda
@needs_cuda
def test_forked_workers_start_cuda_after_the_fork():
    """The zygote never touches CUDA, so each forked worker can start its own context."""
    server = forkserver.start()
    try:
        report = runner.grade(SOLUTIONS, plan_for_files(["lstm_layers"], device="cuda"))
        assert server.alive
    finally:
        server.stop()
    assert scores(report) == full(report), [fr.first_failure() for fr in report.functions]


def test_every_function_has_one_public_small_cuda_case_and_hidden_medium_ones():
    for fn in registry.FUNCTIONS:
        cuda = [c for c in fn.cases if c.device == "cuda"]
        assert [c.name for c in cuda if not c.hidden] == [spec.CUDA_SMALL], fn.name
        assert any(c.hidden and c.dtype == torch.float64 for c in cuda), fn.name
        assert any(c.hidden and c.dtype == torch.float32 for c in cuda), fn.name
        # it comes right after the first CPU case: a lost device is reported early in the table
        assert [c.device for c in fn.cases[:2]] == ["cpu", "cuda"], fn.name


def test_cpu_plan_skips_cuda_cases_and_says_so():
    plan = registry.plan(registry.FUNCTIONS[:1], device="cpu", seed=1)
    assert plan.skipped_cuda and all(p.case.device == "cpu" for p in plan.checks)
