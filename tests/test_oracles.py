"""The reference solutions agree with torch's oracles: 1e-10 in float64, inside tolerance in float32.

Runs the solution functions in this (trusted) process on every case's inputs, the same calls
the worker makes, and compares with what the oracle returned when the plan was built.
"""
import importlib.util
import os

import pytest
import torch
from helpers import SOLUTIONS

from autograder.engine import compare

from autograder import registry
from autograder.engine.spec import CACHE, DictArg


def _module(name, cache={}):
    if name not in cache:
        import sys
        if SOLUTIONS not in sys.path:
            sys.path.insert(0, SOLUTIONS)  # tbptt.py imports rnn_layers
        spec = importlib.util.spec_from_file_location(name, os.path.join(SOLUTIONS, name + ".py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        cache[name] = mod
    return cache[name]


def _args(fn, inputs, cache):
    out = []
    for a in fn.args:
        if isinstance(a, DictArg):
            out.append({k[len(a.prefix):]: v.clone() if torch.is_tensor(v) else v
                        for k, v in inputs.items() if k.startswith(a.prefix)})
        elif a == CACHE:
            out.append(cache)
        else:
            v = inputs[a]
            out.append(v.clone() if torch.is_tensor(v) else v)
    return out


def run_solution(prep):
    """{output name: value} from the reference solution on a prepared check's inputs."""
    fn, inputs = prep.fn, prep.inputs
    cache = None
    if fn.forward:
        fwd = registry.BY_NAME[fn.forward]
        got = getattr(_module(fwd.file), fwd.name)(*_args(fwd, inputs, None))
        cache = got[fwd.returns.index(CACHE)]
    got = getattr(_module(fn.file), fn.name)(*_args(fn, inputs, cache))
    got = got if len(fn.returns) > 1 else (got,)
    return {name: v for name, v in zip(fn.returns, got) if name != CACHE}


def flat(values):
    """Expand dict outputs into "<name>.<key>" entries, as the oracle writes them."""
    out = {}
    for name, v in values.items():
        if isinstance(v, dict):
            out.update({"%s.%s" % (name, k): t for k, t in v.items()})
        else:
            out[name] = v
    return out


def _checks(plans, dtype):
    return [p for p in plans().checks if p.case.dtype == dtype]


@pytest.mark.parametrize("dtype,limit", [(torch.float64, 1e-10), (torch.float32, None)])
def test_solutions_match_oracles(plans, dtype, limit):
    worst = {}
    for prep in _checks(plans, dtype):
        got = flat(run_solution(prep))
        for key, expected in prep.expected.items():
            if key not in got:
                continue  # forward outputs kept by a backward's oracle for the cache note
            tol = limit if limit is not None else prep.fn.tolerance(prep.case) / 5
            want = dtype if expected.is_floating_point() else expected.dtype
            assert got[key].dtype == want, (prep.fn.name, key, got[key].dtype)
            err, where = compare.relative_error(got[key].detach().cpu(), expected)
            worst[(prep.fn.name, key)] = max(worst.get((prep.fn.name, key), 0.0), err)
            assert err <= tol, "%s %s [%s]: relative error %.3g > %.1g at %s" % (
                prep.fn.name, key, prep.case.label, err, tol, where)
    assert worst, "no checks of this dtype"


def test_every_function_has_an_oracle_for_every_output(plans):
    for prep in plans().checks:
        have = {k.split(".")[0] for k in prep.expected}
        assert set(prep.fn.outputs) <= have, (prep.fn.name, prep.fn.outputs, sorted(have))
