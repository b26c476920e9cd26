"""Numerical gradients for checking your backward passes (use float64 tensors).

Example, for a layer whose forward returns (out, cache):

    x = torch.randn(3, 4, dtype=torch.float64)
    dout = torch.randn(3, 5, dtype=torch.float64)
    out, cache = my_forward(x, w, b)
    dx, dw, db = my_backward(dout, cache)
    dx_num = eval_numerical_gradient_array(lambda x: my_forward(x, w, b)[0], x, dout)
    print("dx error:", rel_error(dx, dx_num))   # about 1e-8 or smaller when correct

These helpers perturb one entry of their input at a time and always put it back, even if the
function raises, so the tensor you pass in is unchanged afterwards.
"""
import torch


def rel_error(x, y):
    """Largest relative error between two tensors: max |x - y| / max(1e-8, |x| + |y|)."""
    x = torch.as_tensor(x, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.float64)
    return float(((x - y).abs() / (x.abs() + y.abs()).clamp_min(1e-8)).max())


def eval_numerical_gradient(f, x, h=1e-5):
    """Centered-difference gradient of a scalar function f at x.

    Inputs:
    - f: Function taking one tensor (shaped like x) and returning a scalar (float or 0-dim tensor).
    - x: Tensor at which to evaluate the gradient. Restored before returning.
    - h: Step size.

    Returns:
    - grad: Tensor shaped like x with df/dx.
    """
    return _numerical_gradient(lambda: float(f(x)), x, h)


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """Centered-difference gradient of sum(f(x) * df) at x, for a tensor-valued f.

    Inputs:
    - f: Function taking one tensor (shaped like x) and returning a tensor shaped like df.
    - x: Tensor at which to evaluate the gradient. Restored before returning.
    - df: Upstream gradient of f's output.
    - h: Step size.

    Returns:
    - grad: Tensor shaped like x with the gradient of sum(f(x) * df) with respect to x.
    """
    return _numerical_gradient(lambda: float((f(x) * df).sum()), x, h)


def _numerical_gradient(value, x, h):
    """Perturb x entry by entry (in place, restored in `finally`) and difference value()."""
    if not torch.is_floating_point(x):
        raise TypeError("numerical gradients need a floating-point tensor, got %s" % x.dtype)
    grad = torch.zeros_like(x)
    flat = x.view(-1) if x.is_contiguous() else None
    if flat is None:
        raise ValueError("pass a contiguous tensor (call .contiguous() first)")
    gflat = grad.view(-1)
    for i in range(flat.numel()):
        old = flat[i].item()
        try:
            flat[i] = old + h
            fxph = value()
            flat[i] = old - h
            fxmh = value()
        finally:
            flat[i] = old
        gflat[i] = (fxph - fxmh) / (2 * h)
    return grad
