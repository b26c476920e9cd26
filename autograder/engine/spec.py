"""What a graded function is: the vocabulary every part file (autograder/parts/*.py) uses.

A `GradedFunction` declares, in one place, everything about one function of the student API:
its file, points, argument and return names, the input maker, the torch oracle, the cases
(sizes x dtypes x devices, public or hidden) and the known mistakes that earn a hint. The
runner, the stub tests, the Gradescope output and the handout's points table all read it.
The helpers that build the usual cases live with the part files (autograder/parts/cases.py): they
name the hidden cases, and this module ships with the student's public checker.
"""
from dataclasses import KW_ONLY, dataclass, field
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
    draws every case fresh each run (plans.build_plan).
    Name, sizes and dtype may be passed by position (their values say what they are); the rest by
    keyword: Case("float64, small", SMALL, torch.float64, seed=1).
    """

    name: str
    sizes: Dict[str, int]
    dtype: torch.dtype = torch.float64
    _: KW_ONLY
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
    Without a model, detect must be one of detectors.DETECTORS. The model, a function like detect,
    is passed by keyword: Mistake(hint, detect, model=model).
    """

    hint: str
    detect: Callable[[dict, str, torch.Tensor, torch.Tensor], bool]
    _: KW_ONLY
    model: Optional[Callable[[dict], Dict[str, torch.Tensor]]] = None


@dataclass(kw_only=True)
class GradedFunction:
    """One graded function of the student API (the write-up, handouts/writeup.md, states it for students).

    Built with keywords only (name=..., points=..., make=..., oracle=...): eight of its fields are
    required, and a reader should not have to count arguments to find the points or the oracle.
    """

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


# The name of every function's public CUDA case (the case helpers of autograder/parts/cases.py make it).
CUDA_SMALL = "float64 on CUDA, small"
# What the students write their layers in (course.toml's track). The cases, oracles and points are the same;
# the NumPy track's functions get NumPy arrays (worker.py), are checked in NumPy's words (compare.py) and
# have no CUDA cases (plans.build_plan).
TRACKS = ("torch", "numpy")
NO_CUDA_IN_NUMPY = "CUDA checks do not apply to the NumPy track"
