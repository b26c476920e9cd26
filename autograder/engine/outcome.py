"""What a grading found: one CheckResult per check, one FunctionResult per function, one Report.

Scores are computed here and nowhere else (FunctionResult.score, Report.score); `fresh_pass` says
whether the checks that only count beside others are credited.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .spec import GradedFunction


def fresh_pass(checks):
    """Whether the checks that only count beside others ("inputs left unchanged", "vectorised") are
    credited: some check of the function passed on fresh inputs (CheckResult.fresh: drawn when the
    plan was built, never shipped). A table of the release's public inputs and answers passes checks
    on those inputs only, and earns nothing here. Where none of the function's checks had fresh
    inputs (the public checker's plan: fixed inputs, feedback only, no score that counts), any
    passing check is enough.
    """
    if any(c.fresh for c in checks):
        return any(c.passed and c.fresh for c in checks)
    return any(c.passed for c in checks)

@dataclass
class CheckResult:
    name: str  # the case label, or "inputs left unchanged"
    hidden: bool
    weight: float
    passed: bool
    message: str = ""
    # The problem with a returned value: True a wrong value, False its type, shape, dtype or device
    # (or the return structure); None when no returned value was judged (passed, raised, not run).
    value_mismatch: Optional[bool] = None
    fresh: bool = False  # run on inputs drawn at grading time (Prepared.fresh); see fresh_pass

    @property
    def short(self):
        return self.name.split(" (")[0]


@dataclass
class FunctionResult:
    fn: GradedFunction
    checks: List[CheckResult] = field(default_factory=list)
    forbidden: List[str] = field(default_factory=list)  # forbidden APIs seen at run time
    static: List[str] = field(default_factory=list)  # lines of its source naming a forbidden API
    notes: List[str] = field(default_factory=list)  # what its checks alone do not say (a failing function it calls)
    track: str = "torch"  # plans.TRACKS: the words of forbidden_message

    @property
    def max_score(self):
        return float(self.fn.points)

    @property
    def score(self):
        if self.forbidden or not self.checks:
            return 0.0
        total = sum(c.weight for c in self.checks)
        got = sum(c.weight for c in self.checks if c.passed)
        return round(self.max_score * got / total, 4)

    def first_failure(self, show_hidden=True):
        if self.forbidden:
            return forbidden_message(self.fn, self.forbidden, self.track)
        failed = [c for c in self.checks if not c.passed]
        if failed and failed[0].value_mismatch:  # a wrong type, shape, dtype or device first: fix it first
            failed = [c for c in failed if c.value_mismatch is False and (show_hidden or not c.hidden)] + failed
        for c in failed[:1]:
            if c.hidden and not show_hidden:
                return "[%s] failed (hidden check: details after grades are published)" % c.short
            return "[%s] %s" % (c.short, c.message)
        return ""


def forbidden_message(fn, names, track="torch"):
    return ("%s uses %s, which this assignment does not allow (write it with %s operations and a "
            "hand-written backward pass): 0 points for this function"
            % (fn.name, ", ".join(sorted(set(names))), "NumPy array" if track == "numpy" else "tensor"))


@dataclass
class Report:
    functions: List[FunctionResult]
    seconds: float
    plan_seed: int
    device: str
    skipped_cuda: bool
    student_output: str = ""
    notes: List[str] = field(default_factory=list)
    sandbox_uid: Optional[int] = None  # the uid student code ran as (None: not root)
    review: List[str] = field(default_factory=list)  # for instructors only: lines worth a look
    # The isolation layers the workers ran under: layer name -> "active" or "not available: <why>"
    # (sandbox.py). Shown to instructors in results.json and in grade-batch's summary.
    isolation: Dict[str, str] = field(default_factory=dict)
    track: str = "torch"  # plans.TRACKS: what the functions were written in

    @property
    def score(self):
        return round(sum(f.score for f in self.functions), 4)

    @property
    def max_score(self):
        return sum(f.max_score for f in self.functions)
