"""Shared builders of the fast tier (tests/unit): direct tests of the engine's pure functions.

Nothing here starts a worker, a sandbox or a subprocess. The tests draw their random numbers from
their own seeded generators, so that they give the same inputs alone, under -n W, or without the
suite's conftest (`pytest --noconftest tests/unit`).
"""
import pytest
import torch

from autograder.engine.spec import Case, GradedFunction


def _no_maker(gen, case):  # never called by the functions under test
    raise AssertionError("the maker is not used by these tests")


def _no_oracle(inputs):
    raise AssertionError("the oracle is not used by these tests")


@pytest.fixture
def make_fn():
    """make_fn(**fields) -> a GradedFunction built by keyword, with harmless defaults."""

    def make(**fields):
        base = dict(name="rnn_step_forward", file="rnn_layers", points=2.0, args=("x", "h"), returns=("h_next",),
                    make=_no_maker, oracle=_no_oracle,
                    cases=[Case("float64, small", {"N": 2, "D": 3}, torch.float64, seed=1)])
        base.update(fields)
        return GradedFunction(**base)

    return make


@pytest.fixture
def gen():
    """A fixed-seed generator: the same numbers on every run."""
    return torch.Generator().manual_seed(1234)
