"""How a worker's interpreter starts, for both ways of starting one: a fresh interpreter (sandbox.py)
and a fork of the zygote (zygote.py, forkserver.py). Standard library only: the zygote reads it before
it imports torch.
"""
import os

STARTUP_TIMEOUT = 90.0  # default seconds to start Python and import torch (a worker, or the zygote)


def worker_env(scratch):
    """The whole environment of a worker (nothing of the grader's own leaks through). One thread
    for every math library: a CPU worker may not start threads (isolation.confine)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": scratch, "TMPDIR": scratch, "LANG": "C.UTF-8",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONHASHSEED": "0"}
    for key in ("CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env
