"""Numerical gradients for checking your backward passes (use float64 arrays).

Example, for a layer whose forward returns (out, cache):

    x = np.random.randn(3, 4)
    dout = np.random.randn(3, 5)
    out, cache = my_forward(x, w, b)
    dx, dw, db = my_backward(dout, cache)
    dx_num = eval_numerical_gradient_array(lambda x: my_forward(x, w, b)[0], x, dout)
    print("dx error:", rel_error(dx, dx_num))   # about 1e-8 or smaller when correct

These helpers perturb one entry of their input at a time and always put it back, even if the
function raises, so the array you pass in is unchanged afterwards.
"""
import numpy as np


def rel_error(x, y):
    """Largest relative error between two arrays: max |x - y| / max(1e-8, |x| + |y|)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return float((np.abs(x - y) / np.maximum(np.abs(x) + np.abs(y), 1e-8)).max())


def eval_numerical_gradient(f, x, h=1e-5):
    """Centered-difference gradient of a scalar function f at x.

    Inputs:
    - f: Function taking one array (shaped like x) and returning a scalar (float, NumPy scalar
      or 0-dim array).
    - x: Array at which to evaluate the gradient. Restored before returning.
    - h: Step size.

    Returns:
    - grad: Array shaped like x with df/dx.
    """
    return _numerical_gradient(lambda: float(f(x)), x, h)


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """Centered-difference gradient of sum(f(x) * df) at x, for an array-valued f.

    Inputs:
    - f: Function taking one array (shaped like x) and returning an array shaped like df.
    - x: Array at which to evaluate the gradient. Restored before returning.
    - df: Upstream gradient of f's output.
    - h: Step size.

    Returns:
    - grad: Array shaped like x with the gradient of sum(f(x) * df) with respect to x.
    """
    return _numerical_gradient(lambda: float((f(x) * df).sum()), x, h)


def _numerical_gradient(value, x, h):
    """Perturb x entry by entry (in place, restored in `finally`) and difference value()."""
    if not isinstance(x, np.ndarray):
        raise TypeError("numerical gradients need a NumPy array, got %s" % type(x).__name__)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError("numerical gradients need a floating-point array, got %s" % x.dtype)
    grad = np.zeros_like(x)
    # Index entries by position, so that the writes reach x itself whatever its memory layout
    # (x.reshape(-1) of a non-contiguous array would be a copy).
    for i in np.ndindex(x.shape):
        old = x[i].item()
        try:
            x[i] = old + h
            fxph = value()
            x[i] = old - h
            fxmh = value()
        finally:
            x[i] = old
        grad[i] = (fxph - fxmh) / (2 * h)
    return grad
