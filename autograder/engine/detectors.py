"""Hint detectors that hold no solution code: shared by the registry and the public checker.

A `Mistake` (spec.py) recognises a known mistake in a wrong output. Most are built by
`parts.common.model_mistake` from a model of the buggy code, and decide with `matches_model`
below; the rest are the generic detectors of this file, named in `DETECTORS`. This module
ships with the student release (autograder/release.py), so it must never hold a model of the
buggy code or anything close to a solution: the release evaluates the models on the instructor's
machine and ships their outputs, and the checker compares with those through `matches_model`.
"""
import torch

from .compare import MATCH

F64 = torch.float64


def matches_model(buggy, got):
    """Whether the student's output `got` is what a model of the buggy code computed.

    Inputs:
    - buggy: the model's output for this output name (a tensor), or None when it has none.
    - got: the student's output, float64 on the CPU.

    Where the model gives NaN (0/0, inf/inf), `got` must have NaN in the same places and match
    elsewhere; an all-NaN model proves nothing (many mistakes give that) and never matches.
    Returns a bool: the largest difference is at most MATCH times the model's largest entry.
    """
    if buggy is None or tuple(buggy.shape) != tuple(got.shape):
        return False
    b = buggy.detach().to("cpu", F64)
    nan_b = torch.isnan(b)
    if not torch.equal(nan_b, torch.isnan(got)) or (nan_b.all() and b.numel()):
        return False
    b, g = b[~nan_b], got[~nan_b]
    if b.numel() == 0:
        return False
    scale = max(float(b.abs().max()), 1e-30)
    return float((g - b).abs().max()) <= MATCH * scale


def repeated_words_overwritten(inputs, name, got, expected):
    """dW right for words seen once, wrong for words seen several times: assigned, not summed."""
    if name != "dW":
        return False
    counts = torch.bincount(inputs["x"].reshape(-1).cpu(), minlength=expected.shape[0])
    exp = expected.to("cpu", F64)
    row_ok = ((got - exp).abs() <= 1e-6 * max(float(exp.abs().max()), 1e-30)).all(dim=1)
    return bool(row_ok[counts <= 1].all()) and not bool(row_ok[counts > 1].all())


def transposed_weight_grad(inputs, name, got, expected):
    """A square weight gradient that equals the transpose of the right one."""
    if not name.startswith("dW") or got.dim() != 2 or got.shape[0] != got.shape[1]:
        return False
    e = expected.detach().to("cpu", F64)
    return float((got - e.T).abs().max()) <= MATCH * max(float(e.abs().max()), 1e-30)


# name -> detector: how the release refers to a custom detector in its data file
DETECTORS = {f.__name__: f for f in (repeated_words_overwritten, transposed_weight_grad)}
