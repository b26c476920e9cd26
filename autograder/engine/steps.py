"""The worker program of one check: which student functions to call, with which arguments.

A backward's check first calls its forward (for the cache), then the backward on it. Arguments are
named inputs ({"in": name}), a dict of the inputs whose names start with a prefix ({"dict": prefix},
spec.DictArg), or a value an earlier step returned ({"step": k, "index": i}).
"""
from .spec import CACHE, DictArg


def dict_arg(prefix, inputs):
    """The value of a DictArg: the inputs whose names start with prefix, under the rest of their names."""
    return {k[len(prefix):]: v for k, v in inputs.items() if k.startswith(prefix)}


def call_args(fn, inputs, cache=None):
    """fn's arguments as Python values, in order: what the worker builds from build_steps' program
    (worker.py), for a call made here (speed.py's reference run)."""
    return [dict_arg(a.prefix, inputs) if isinstance(a, DictArg) else (cache if a == CACHE else inputs[a])
            for a in fn.args]


def program_arg(a, forward=None):
    """One argument in the worker program: a named input, a DictArg's prefix, or the cache the first
    step (forward) returned."""
    if isinstance(a, DictArg):
        return {"dict": a.prefix}
    if a == CACHE:
        return {"step": 0, "index": forward.returns.index(CACHE)}
    return {"in": a}


def call_request(inputs, steps, track, **extra):
    """The worker's "call" request of `steps` (build_steps' program) on `inputs`, for the student's functions of
    `track` (plans.TRACKS: what they take and return, worker.run_call): each distinct deny-list
    is sent once ("denies"), and each step names its own by index. A deny-list holds dozens of
    operators with their words; sent with every step, its decoding would cost a speed check's request of
    many calls (speed.py) more than the calls themselves."""
    denies, packed = [], []
    for step in steps:
        deny = step.get("deny") or {}
        index = next((i for i, d in enumerate(denies) if d is deny or d == deny), None)
        if index is None:
            denies.append(deny)
            index = len(denies) - 1
        packed.append(dict(step, deny=index))
    return dict({"op": "call", "inputs": inputs, "steps": packed, "denies": denies, "track": track}, **extra)


def build_steps(prep, where=None):
    """The worker program for one check (a plans.Prepared or a speed.Timing): the call, preceded by the
    forward for a backward (prep.forward). where: {function name: the student's module that holds it}
    (submission.relocate; default: the function's registry file)."""
    fn, fwd = prep.fn, prep.forward
    where = where or {}
    steps = []
    if fn.forward:
        steps.append({"module": where.get(fwd.name, fwd.file), "fn": fwd.name, "args": [program_arg(a) for a in fwd.args],
                      "arity": len(fwd.returns), "skip": [fwd.returns.index(CACHE)], "deny": fwd.forbidden_ops})
    args = [program_arg(a, fwd) for a in fn.args]
    skip = [i for i, r in enumerate(fn.returns) if r == CACHE]
    steps.append({"module": where.get(fn.name, fn.file), "fn": fn.name, "args": args, "arity": None, "skip": skip,
                  "deny": fn.forbidden_ops})
    return steps
