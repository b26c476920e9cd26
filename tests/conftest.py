import functools
import os
import random
import sys
import zlib

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from helpers import plan_for_files  # noqa: E402

from autograder import registry  # noqa: E402

# The suite tests the kit's own limits: an instructor's overrides (AUTOGRADER_MEMORY_MB=65536, say)
# would let the hostile submissions take 64 GB each. test_config.py sets them where it tests them.
GRADING_LIMITS = ("AUTOGRADER_MEMORY_MB", "AUTOGRADER_CALL_TIMEOUT", "AUTOGRADER_STARTUP_TIMEOUT",
                  "AUTOGRADER_BUDGET", "AUTOGRADER_NPROC", "AUTOGRADER_FSIZE_MB", "AUTOGRADER_INSTRUCTOR_TIMEOUT")
for _name in GRADING_LIMITS:
    os.environ.pop(_name, None)

# Under pytest-xdist (-n W), W graders share the cores: one torch thread pool each of every core
# would oversubscribe the machine W times over (and time out the workers' calls).
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    import torch  # noqa: E402

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))


@pytest.fixture(autouse=True)
def _seeded(request):
    """Every test draws the same random numbers on every run (and alone or under -n W): a failure
    seen once is seen again, and a tolerance is judged on the inputs it was tried on. The seed
    differs from test to test, so the suite as a whole still samples many inputs."""
    import torch

    seed = zlib.crc32(request.node.nodeid.encode())
    random.seed(seed)
    torch.manual_seed(seed)
    yield


@functools.lru_cache(maxsize=None)
def _plan(files, device, track="torch"):
    return plan_for_files(list(files), device=device, track=track)


@pytest.fixture(scope="session")
def plans():
    """plans(files, device="cpu"): a plan (inputs + oracle outputs) built once per session."""
    return lambda files=tuple(registry.FILES), device="cpu": _plan(tuple(files), device)


@pytest.fixture(scope="session")
def np_plans():
    """np_plans(files): a plan of the NumPy track (its functions get NumPy arrays), built once per session."""
    return lambda files=tuple(registry.FILES): _plan(tuple(files), "cpu", "numpy")


@pytest.fixture(scope="module")
def zygote():
    """Workers forked from one zygote, as `grade` and `grade-batch` fork them: torch's import is paid
    once per test module, not once per grading (most of a grading's time otherwise). Whatever spawned
    workers before (none, usually) spawns them again afterwards."""
    from autograder.engine import forkserver, sandbox

    before = sandbox.SPAWNER
    server = forkserver.start()
    yield server
    server.stop()
    sandbox.SPAWNER = before
