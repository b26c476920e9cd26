"""Your functions, as the notebooks call them: PyTorch tensors in, PyTorch tensors out, on either track.

The notebooks' experiments are written once, in PyTorch. They import your modules through load():

    rnn_layers = load("rnn_layers")
    h, cache = rnn_layers.rnn_forward(x, h0, Wx, Wh, b)  # x, h0, ...: tensors; h: a tensor
    dx, dh0, dWx, dWh, db = rnn_layers.rnn_backward(dh, cache)

On the PyTorch track load(name) is `import name`: your module, as it is. On the NumPy track it is
your module behind a thin boundary; each of its public functions
- receives NumPy arrays: each tensor argument becomes t.detach().cpu().numpy(), which on the CPU
  shares the tensor's memory (writing into the array, as a gradient check does, writes into the
  tensor); tuples, lists and dicts are converted entry by entry; a function passed as an argument
  (the `f` of a gradient check) is wrapped the other way round, so it still receives and returns
  tensors;
- returns tensors: an array becomes torch.from_numpy(a) (its dtype kept, its memory shared where
  torch allows), a NumPy scalar or a Python float a 0-dim tensor, inside tuples, lists and dicts
  too. A cache comes back as tensors and goes back to arrays when you hand it to the backward pass.
Nothing else changes: your NumPy code runs as you wrote it, and its errors (a stub's
NotImplementedError, say) reach the notebook unchanged.
"""
import functools
import importlib

TRACK = "torch"  # the course's track ("torch" or "numpy"): set when the notebooks are built


def load(name):
    """Import your module `name` (rnn_layers, lstm_layers, tbptt, attention, gradient_check).

    Returns the module itself on the PyTorch track, and on the NumPy track an object with the same
    attributes whose public functions take and return tensors (see the top of this file).
    """
    module = importlib.import_module(name)
    if TRACK == "torch":
        return module
    if TRACK == "numpy":
        return NumpyModule(module)
    raise ValueError("track.py: unknown TRACK %r (expected 'torch' or 'numpy')" % TRACK)


class NumpyModule:
    """A NumPy module seen from PyTorch: its public functions convert at the boundary; every other
    attribute (constants, classes, names starting with _) is the module's own."""

    def __init__(self, module):
        self._module = module

    def __getattr__(self, attr):  # only called for what __init__ did not set
        value = getattr(self._module, attr)
        if attr.startswith("_") or isinstance(value, type) or not callable(value):
            return value
        return _across(value, to_numpy, to_torch)

    def __dir__(self):
        return dir(self._module)

    def __repr__(self):
        return "<%s, tensors in and out>" % repr(self._module).strip("<>")


def _across(fn, args_to, result_to):
    """fn with its arguments converted by args_to and its result by result_to."""
    @functools.wraps(fn)
    def call(*args, **kwargs):
        return result_to(fn(*args_to(args), **args_to(kwargs)))
    return call


def _each(value, convert):
    """value with convert applied to each entry of a tuple, list or dict; None if it is none of them."""
    if isinstance(value, dict):
        return {k: convert(v) for k, v in value.items()}
    if isinstance(value, tuple):
        items = [convert(v) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)  # a namedtuple stays one
    if isinstance(value, list):
        return [convert(v) for v in value]
    return None


def to_numpy(value):
    """Tensors -> NumPy arrays (sharing memory on the CPU), recursively; a function is wrapped to take
    and return tensors; anything else as it is."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, (dict, tuple, list)):
        return _each(value, to_numpy)
    if callable(value) and not isinstance(value, type):
        return _across(value, to_torch, to_numpy)
    return value


def to_torch(value):
    """NumPy arrays -> tensors (dtype kept, memory shared where torch allows), NumPy scalars and
    Python floats -> 0-dim tensors, recursively; a function is wrapped to take and return arrays;
    anything else (ints, strings, None) as it is."""
    import numpy as np
    import torch

    if isinstance(value, np.ndarray):
        if value.flags.writeable:
            try:
                return torch.from_numpy(value)
            except (TypeError, ValueError):  # negative strides (np.flip), or a dtype torch lacks
                pass
        try:
            return torch.from_numpy(value.copy())  # a read-only array: a writable copy
        except TypeError:  # object arrays and other dtypes torch does not have
            return value
    if isinstance(value, (np.number, np.bool_)):  # before float: np.float64 is a Python float too
        return torch.from_numpy(np.asarray(value))
    if isinstance(value, float):
        return torch.tensor(value, dtype=torch.float64)
    if isinstance(value, (dict, tuple, list)):
        return _each(value, to_torch)
    if callable(value) and not isinstance(value, type):
        return _across(value, to_numpy, to_torch)
    return value
