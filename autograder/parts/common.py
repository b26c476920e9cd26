"""Helpers shared by the part files: random inputs and autograd on the oracle side."""
import torch

from ..engine.detectors import matches_model
from ..engine.spec import Mistake

F64 = torch.float64


def randn(g, *shape, scale=1.0):
    """Standard normal float64 CPU tensor from generator g, times scale."""
    return torch.randn(*shape, generator=g, dtype=F64) * scale


def saturate(W, case):
    """Weights for case.opt("saturate") = S: every other column (a unit, or a gate's unit) times S/8.

    With saturate_bias below, those units' pre-activations sit at +-S, give or take S/5 (S = 80: 50
    to 110, where exp overflows in float32), while the other units stay in range, so that the
    gradients are still made mostly of numbers float32 represents well.
    """
    big = case.opt("saturate")
    if not big:
        return W
    W = W.clone()
    W[..., 0::2] *= big / 8
    return W


def saturate_bias(b, case):
    """The bias for case.opt("saturate") = S: +S, -S, +S, ... on every other unit (see saturate)."""
    big = case.opt("saturate")
    if not big:
        return b
    b = b.clone()
    n = b[0::2].numel()
    b[0::2] = big * (1 - 2 * (torch.arange(n, dtype=b.dtype) % 2))
    return b


def randint(g, high, *shape):
    return torch.randint(0, high, shape, generator=g, dtype=torch.int64)


def grads(outputs, upstream, inputs, wrt):
    """Autograd: gradients of sum(outputs[k] * upstream[k]) with respect to inputs[name].

    outputs: tensor or list of tensors built from `inputs` (leaves with requires_grad);
    returns a dict name -> gradient (zeros where an input does not influence the output).
    """
    outs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    ups = upstream if isinstance(upstream, (list, tuple)) else [upstream]
    gs = torch.autograd.grad(outs, [inputs[n] for n in wrt], ups, allow_unused=True)
    return {n: (gr if gr is not None else torch.zeros_like(inputs[n])) for n, gr in zip(wrt, gs)}


def leaves(inputs, names):
    """Copies of the named inputs that require grad (the oracle never touches the originals)."""
    out = dict(inputs)
    for n in names:
        out[n] = inputs[n].detach().clone().requires_grad_(True)
    return out


def layer_oracles(run, outputs, wrt, upstream):
    """The forward and backward oracles of a layer whose torch version is `run`.

    run(inputs) returns the tensor (or tuple of tensors) named `outputs`. The forward oracle
    returns them by name. The backward oracle returns them too (a backward check compares the
    student's forward with them) and adds "d<name>" for each name in `wrt`: autograd of
    sum_k outputs[k] * inputs[upstream[k]] (upstream[k] None: output k is not differentiated).
    """

    def as_tuple(value):
        return value if isinstance(value, tuple) else (value,)

    def forward(i):
        return dict(zip(outputs, as_tuple(run(i))))

    def backward(i):
        i = leaves(i, wrt)
        outs = as_tuple(run(i))
        used = [(o, i[u]) for o, u in zip(outs, upstream) if u is not None]
        g = grads([o for o, _ in used], [u for _, u in used], i, wrt)
        res = {name: o.detach() for name, o in zip(outputs, outs)}
        res.update({"d" + n: g[n] for n in wrt})
        return res

    return forward, backward


def backward_maker(make):
    """The maker of a backward check: the forward's inputs plus the upstream gradients."""
    return lambda g, case: make(g, case, backward=True)


def model_mistake(hint, model):
    """A Mistake detected by comparing the student's output with a model of the buggy code.

    model(inputs) returns a dict output-name -> what the buggy code computes; the comparison is
    detectors.matches_model (NaN-aware). The Mistake keeps the model, so that the student
    release can ship its outputs on the public cases instead of its code (see release.py).

    The model runs once per check: feedback.hints asks about every wrong output of a check with
    the same inputs dict, so the latest call's outputs are kept (with a reference to those inputs,
    so that an identity test never mistakes another check's inputs for them). A model that raises
    gives no hint, as it did when hints() caught the exception.
    """
    latest = [None]  # (inputs, the model's outputs on them, or None where it raised)

    def outputs(inputs):
        seen = latest[0]
        if seen is not None and seen[0] is inputs:
            return seen[1]
        try:
            with torch.no_grad():
                out = model(inputs)
        except Exception:  # a hint's model must never break grading
            out = None
        entry = (inputs, out if isinstance(out, dict) else None)
        latest[0] = entry  # (read back from latest[0], another grading thread's entry could come back instead)
        return entry[1]

    def detect(inputs, name, got, expected):
        out = outputs(inputs)
        return matches_model(None if out is None else out.get(name), got)

    return Mistake(hint, detect, model=model)
