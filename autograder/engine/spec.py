"""What a graded function is: the vocabulary every part file (autograder/parts/*.py) uses.

A `GradedFunction` declares, in one place, everything about one function of the student API:
its file, points, argument and return names, the input maker, the torch oracle, the cases
(sizes x dtypes x devices, public or hidden) and the known mistakes that earn a hint. The
runner, the stub tests, the Gradescope output and the handout's points table all read it.
"""
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import torch

from . import forbidden

CACHE = "cache"  # the opaque value a forward pass hands to its backward pass


@dataclass(frozen=True)
class DictArg:
    """An argument that is a dict built from the inputs named "<prefix><key>".

    Example: DictArg("params.") passes {"Wx": inputs["params.Wx"], ...}. A dict-valued output
    is compared the same way: the oracle returns "<output name>.<key>" entries.
    """

    prefix: str


@dataclass(frozen=True)
class Case:
    """One set of inputs a function is checked on.

    sizes: keyword sizes for the maker (N, T, D, H, ...); opts: special input flags.
    seed: a public case's fixed seed (the public checker's inputs); None for hidden cases. The grader
    draws every case fresh each run (runner.build_plan).
    """

    name: str
    sizes: Dict[str, int]
    dtype: torch.dtype = torch.float64
    device: str = "cpu"
    hidden: bool = False
    seed: Optional[int] = None
    opts: Tuple[Tuple[str, object], ...] = ()
    weight: float = 1.0
    rtol: Optional[float] = None  # this case's tolerance, overriding the function's and compare.RTOL

    def opt(self, key, default=None):
        return dict(self.opts).get(key, default)

    @property
    def label(self):
        sizes = " ".join("%s=%s" % kv for kv in self.sizes.items())
        dtype = str(self.dtype).replace("torch.", "")
        return "%s (%s, %s, %s)" % (self.name, dtype, self.device, sizes)


@dataclass(frozen=True)
class Mistake:
    """A known mistake and how to recognise it in a wrong output.

    detect(inputs, output_name, got, expected) -> bool, called only when the output is wrong
    (got: the student's value as float64 on the CPU; inputs: the float64 inputs). See
    parts/common.py: model_mistake() builds one from a model of the buggy code and keeps that
    model here (model(inputs) -> {output name: what the buggy code computes}), so that the
    student release can ship the model's outputs on the public cases rather than its code.
    Without a model, detect must be one of detectors.DETECTORS.
    """

    hint: str
    detect: Callable[[dict, str, torch.Tensor, torch.Tensor], bool]
    model: Optional[Callable[[dict], Dict[str, torch.Tensor]]] = None


@dataclass
class GradedFunction:
    """One graded function of the student API (see ../shared/API.md)."""

    name: str
    file: str  # module name, e.g. "rnn_layers" for rnn_layers.py
    points: float
    args: Tuple[object, ...]  # in call order: input names, CACHE (the forward's cache), DictArg
    returns: Tuple[str, ...]  # output names in return order; CACHE for the cache
    make: Callable[[torch.Generator, Case], Dict[str, object]]  # float64/int64 CPU tensors, ints, floats
    oracle: Callable[[dict], Dict[str, torch.Tensor]]  # torch's answer for every output name
    cases: List[Case]
    forward: Optional[str] = None  # backward functions: the forward that builds the cache
    mistakes: List[Mistake] = field(default_factory=list)
    rtol: Dict[torch.dtype, float] = field(default_factory=dict)  # overrides of compare.RTOL
    time_axis: Dict[str, int] = field(default_factory=dict)  # output -> axis of time, for hints
    # Operators that would do this function's work for it (ATen name -> what the student reads);
    # watched during every call of the student's code, whatever Python name reached them.
    forbidden_ops: Dict[str, str] = field(default_factory=lambda: dict(forbidden.LAYERS))
    # The vectorisation check (speed.py): the maker's sizes of a larger float32 CPU input on which the
    # student's call is timed against the reference's; None: no such check. Choose a batch N that makes
    # a Python loop over it clearly slower than speed.FACTOR, and, for a function that needs no loop
    # over time, a short T (a loop over time is allowed).
    speed: Optional[Dict[str, int]] = None

    def tolerance(self, case):
        """The relative error allowed on `case` (compare.relative_error)."""
        from .compare import RTOL

        return case.rtol or self.rtol.get(case.dtype, RTOL[case.dtype])

    @property
    def outputs(self):
        """Names of the returned values that are compared (everything but the cache)."""
        return tuple(r for r in self.returns if r != CACHE)


SATURATED = "float32, large pre-activations (50-100: exp overflows)"
# float32 holds 50-100 only to about 4e-6 (half a unit in the last place), so outputs near zero, such
# as softmax(x) - 1 for a winning score of 90, carry that absolute error: over 600 seeds the
# reference reached 1.6e-2 of relative error here (additive attention's backward; 7e-3 for the loss;
# compare.relative_error; 1e-3 elsewhere in float32). An overflow gives inf or NaN, and a wrong
# formula errors of order 1: both stay far outside.
SATURATED_RTOL = 5e-2


def saturated_cases(small, medium, opts, rtol=None):
    """float32 cases whose pre-activations reach 50-100, where exp overflows in float32 while torch's
    float64 answer stays finite: a hand-written tanh, sigmoid or softmax fails them. A public small
    one (so the overflow hint shows before the deadline) and a hidden medium one."""
    opts, rtol = tuple(sorted(opts.items())), rtol or SATURATED_RTOL
    return [Case(SATURATED, small, torch.float32, seed=4, opts=opts, rtol=rtol),
            Case(SATURATED + ", medium", medium, torch.float32, hidden=True, opts=opts, rtol=rtol)]


def standard_cases(small, medium, edges=(), float32_small=True, cuda=True, saturate=None, saturated_rtol=None):
    """The usual checks of a function: public small cases, hidden medium ones, edge cases, CUDA.

    small, medium: size dicts. edges: (name, sizes, opts-dict) triples, hidden. saturate: the
    maker's opts that push pre-activations to 50-100 (functions that apply tanh, sigmoid, exp or
    softmax), for saturated_cases (saturated_rtol: their tolerance, when not SATURATED_RTOL).
    """
    public_cuda, *hidden_cuda = cuda_cases(small, medium) if cuda else (None,)
    cases = [
        Case("float64, small", small, torch.float64, seed=1),
    ]
    if cuda:  # second: a lost device shows before the deadline, ahead of the value checks
        cases.append(public_cuda)
    if float32_small:
        cases.append(Case("float32, small (dtype kept)", small, torch.float32, seed=2))
    saturated = saturated_cases(small, medium, saturate, saturated_rtol) if saturate else []
    cases += saturated[:1] + [
        Case("float64, medium", medium, torch.float64, hidden=True),
        Case("float32, medium", medium, torch.float32, hidden=True),
    ] + saturated[1:]
    for name, sizes, opts in edges:
        cases.append(Case(name, sizes, torch.float64, hidden=True, opts=tuple(sorted(opts.items()))))
    return cases + hidden_cuda


CUDA_SMALL = "float64 on CUDA, small"


def cuda_cases(small, medium):
    """The CUDA checks (run only where a GPU is present): a public small one, so that a student whose
    code loses the device ("h is on cpu, expected cuda") sees it before the deadline, and hidden
    medium ones in float64 and float32."""
    return [Case(CUDA_SMALL, small, torch.float64, device="cuda", seed=5),
            Case("float64 on CUDA, medium", medium, torch.float64, device="cuda", hidden=True),
            Case("float32 on CUDA, medium", medium, torch.float32, device="cuda", hidden=True)]
