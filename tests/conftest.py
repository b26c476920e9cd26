import functools
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from helpers import plan_for_files  # noqa: E402

from autograder import registry  # noqa: E402


@functools.lru_cache(maxsize=None)
def _plan(files, device):
    return plan_for_files(list(files), device=device)


@pytest.fixture(scope="session")
def plans():
    """plans(files, device="cpu"): a plan (inputs + oracle outputs) built once per session."""
    return lambda files=tuple(registry.FILES), device="cpu": _plan(tuple(files), device)
