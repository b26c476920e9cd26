"""The plan: prepared checks, built once on the trusted side (no student code runs here).

For every function x case, `build_plan` makes the inputs and asks torch's oracle for the expected
outputs. Every case draws its inputs from a per-run seed (the public checker keeps the public cases'
fixed ones: `public_inputs="fixed"`), so that a whole class is graded against one set of hidden
inputs and no point is earned on the inputs the student release ships.
"""
import random
import zlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch

from . import speed
from .spec import NO_CUDA_IN_NUMPY, TRACKS, Case, GradedFunction


@dataclass
class Prepared:
    """One check, ready to send: inputs as the student gets them and torch's answer."""

    fn: GradedFunction
    case: Case
    seed: int
    inputs: Dict[str, torch.Tensor]  # CPU, in the case's dtype (sent to the worker)
    inputs64: Dict[str, torch.Tensor]  # the same values in float64 on the CPU (hints)
    expected: Dict[str, torch.Tensor]  # every output name -> float64 CPU tensor
    # Whether the inputs were drawn from the plan's seed when it was built (never shipped to students):
    # only a passing check on such inputs earns "inputs left unchanged" and "vectorised" (fresh_pass).
    fresh: bool = False
    forward: Optional[GradedFunction] = None  # fn's forward, whose cache a backward's check needs
    track: str = "torch"  # what the student's functions get and return: torch tensors or NumPy arrays (TRACKS)


@dataclass
class Plan:
    """Everything a grading needs besides the submission: the plan is authoritative (the grading loop
    reads no other list of functions)."""

    functions: List[GradedFunction]  # the graded functions, in report order
    checks: List[Prepared]
    seed: int
    device: str
    skipped_cuda: bool
    speed: list = field(default_factory=list)  # speed.Timing: the vectorisation checks
    # The kit whose secret folders (sandbox.KIT_SECRETS) no worker sees; None where there is no kit
    # around the engine to hide (the public checker: the student's own folder).
    kit: Optional[str] = None
    track: str = "torch"  # TRACKS: the assignment's track (its CUDA cases do not apply to "numpy")


def cuda_available():
    return torch.cuda.is_available()


PUBLIC_INPUTS = ("fresh", "fixed")


def build_plan(functions, device="auto", seed=None, public_inputs="fresh", *, kit, library=(), reference=None,
               track="torch"):
    """Make inputs and oracle outputs for every case of `functions`.

    device: "cpu" (CPU cases only), "cuda" (CPU and CUDA cases; CUDA must exist) or "auto"
    (CUDA cases when a GPU is present). seed: the one every drawn input comes from; fresh when None.
    public_inputs: "fresh" (grading: the public cases, at their sizes and kinds, draw their inputs
    from `seed` like the hidden ones, so that no point is earned on the inputs the student release
    ships) or "fixed" (the public cases' own seeds, the release's inputs: feedback only, for the
    public checker and for tests that compare its messages with the grader's). See case_seed.
    library: further GradedFunctions a check may call without being graded (a backward's forward when
    only the backward is graded); `functions` win over them by name. reference: the folder of the
    reference solutions the vectorisation checks time (speed.py; None: no such checks). kit: Plan.kit, which
    every caller names (None only where there is no kit to hide): a forgotten kit would hide nothing.
    The kit's own verbs build plans with registry.plan, which fills library, reference and kit in.
    track: TRACKS, what the student's functions take and return; "numpy" has no CUDA cases, whatever device
    says (reference must then hold the NumPy reference solutions).
    """
    if track not in TRACKS:
        raise ValueError("track must be one of %s, not %r" % (", ".join(TRACKS), track))
    functions = list(functions)
    known = {fn.name: fn for fn in list(library) + functions}
    missing = sorted({fn.forward for fn in functions if fn.forward and fn.forward not in known})
    if missing:
        raise ValueError("build_plan: a graded function calls %s, which neither functions nor library holds"
                         % ", ".join(missing))
    if device == "cuda" and track != "torch":
        raise RuntimeError("--device cuda: %s" % NO_CUDA_IN_NUMPY)
    if device == "cuda" and not cuda_available():
        raise RuntimeError("--device cuda: no CUDA device is available")
    use_cuda = device in ("cuda", "auto") and cuda_available() and track == "torch"
    if seed is None:
        seed = random.SystemRandom().randrange(1 << 31)
    if use_cuda:  # the oracle computes in full precision on the GPU
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    checks = []
    skipped = False
    for fn in functions:
        shipped = shipped_inputs(fn)
        forward = known[fn.forward] if fn.forward else None
        for case in fn.cases:
            if case.device == "cuda" and not use_cuda:
                skipped = True
                continue
            prep = prepare(fn, case, seed, public_inputs, shipped)
            prep.forward, prep.track = forward, track
            checks.append(prep)
    timings = speed.prepare(functions, reference, known, track)
    return Plan(functions, checks, seed, "cuda" if use_cuda else "cpu", skipped, timings, kit, track)


def case_seed(fn, case, plan_seed, public_inputs="fresh"):
    """The generator seed of one case's inputs.

    Hidden cases, and every case when public_inputs is "fresh": derived from the plan's seed (never
    the public seed, so never the inputs the student release ships). Public cases when public_inputs
    is "fixed": their own fixed seed (what release.py ships to the public checker).
    """
    if public_inputs not in PUBLIC_INPUTS:
        raise ValueError("public_inputs must be one of %s, not %r" % (", ".join(PUBLIC_INPUTS), public_inputs))
    key = zlib.crc32(("%s/%s" % (fn.name, case.name)).encode())
    if case.seed is None:
        return (key ^ plan_seed) & 0x7FFFFFFF
    fixed = key + case.seed
    if public_inputs == "fixed":
        return fixed
    drawn = (key ^ plan_seed) & 0x7FFFFFFF
    return drawn ^ 1 if drawn == fixed else drawn  # one plan seed in 2**31 would give the shipped one


def _is_float(v):
    return torch.is_tensor(v) and v.is_floating_point()


def _draw(fn, case, seed):
    """The inputs of `case` from `seed`, as the student gets them (CPU, floats in the case's dtype)."""
    made = fn.make(torch.Generator().manual_seed(seed), case)
    return {k: (v.to(case.dtype) if _is_float(v) else v) for k, v in made.items()}


def shipped_inputs(fn):
    """The inputs of fn's public cases at their fixed seeds: what the student release ships (release.py)."""
    return [_draw(fn, c, case_seed(fn, c, 0, "fixed")) for c in fn.cases if not c.hidden]


def same_inputs(a, b):
    """Whether two input dicts hold the same values (tensors: dtype, shape and every element)."""
    if a.keys() != b.keys():
        return False
    for k, x in a.items():
        y = b[k]
        if torch.is_tensor(x) or torch.is_tensor(y):
            if not (torch.is_tensor(x) and torch.is_tensor(y) and x.dtype == y.dtype and x.shape == y.shape
                    and torch.equal(x, y)):
                return False
        elif x != y:
            return False
    return True


REDRAWS = 32  # draws of a case whose inputs keep coming out as shipped ones, before it is marked not fresh


def prepare(fn, case, plan_seed, public_inputs="fresh", shipped=None):
    """One check of `fn` on `case`, its inputs from case_seed(fn, case, plan_seed, public_inputs).

    A drawn case (hidden, or public with public_inputs "fresh") whose inputs equal one the release
    ships for fn (shipped: shipped_inputs(fn), computed when None) is drawn again from the next seed:
    a maker with few choices (local_attention_mask's small case picks one of 7 centres) would
    otherwise hand the student a check it has the answer of. Such a check is fresh (Prepared.fresh);
    one still equal after REDRAWS draws (a maker without randomness) is not.
    """
    seed = case_seed(fn, case, plan_seed, public_inputs)
    inputs = _draw(fn, case, seed)
    fresh = case.seed is None or public_inputs == "fresh"
    if fresh:
        shipped = shipped_inputs(fn) if shipped is None else shipped
        for _ in range(REDRAWS):
            if not any(same_inputs(inputs, s) for s in shipped):
                break
            seed = (seed + 1) & 0x7FFFFFFF
            inputs = _draw(fn, case, seed)
        fresh = not any(same_inputs(inputs, s) for s in shipped)
    inputs64 = {k: (v.to(torch.float64) if _is_float(v) else v) for k, v in inputs.items()}
    on_device = {k: (v.to(case.device) if torch.is_tensor(v) else v) for k, v in inputs64.items()}
    expected = {k: v.detach().to("cpu") for k, v in fn.oracle(on_device).items()}
    return Prepared(fn, case, seed, inputs, inputs64, expected, fresh)
