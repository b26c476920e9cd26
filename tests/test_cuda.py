"""CUDA: the same checks on the GPU (skipped cleanly without one)."""
import pytest
import torch
from helpers import SOLUTIONS, full, scores

from autograder import registry, runner

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.cuda
@needs_cuda
def test_solutions_get_full_marks_including_the_cuda_checks():
    plan = runner.build_plan(device="cuda", seed=7)
    assert any(p.case.device == "cuda" for p in plan.checks)
    report = runner.grade(SOLUTIONS, plan)
    assert scores(report) == full(report), [fr.first_failure() for fr in report.functions if fr.score < fr.max_score]


def test_every_function_has_cuda_cases():
    for fn in registry.FUNCTIONS:
        assert any(c.device == "cuda" for c in fn.cases), fn.name


def test_cpu_plan_skips_cuda_cases_and_says_so():
    plan = runner.build_plan(registry.FUNCTIONS[:1], device="cpu", seed=1)
    assert plan.skipped_cuda and all(p.case.device == "cpu" for p in plan.checks)
