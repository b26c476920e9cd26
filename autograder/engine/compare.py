"""Compare what a student returned with torch's answer, and say what is wrong.

Relative error is defined once, here, and printed with every value failure:

    err_i = |got_i - expected_i| / max(|expected_i|, FLOOR * max_j |expected_j|, TINY)

The floor keeps entries that are (nearly) zero from turning round-off into huge relative
errors, while an error of 0.1% of the tensor's scale anywhere still fails in float64.
"""
import math
import re

import torch

from .wire import Other, Received

RTOL = {torch.float64: 1e-7, torch.float32: 1e-3}
FLOOR = 1e-3
TINY = 1e-30
MATCH = 1e-4  # how close a wrong output must be to a mistake's prediction to earn its hint


# The NumPy track's words for what the torch track's messages and hints say in torch's (numpy_words): a
# student who writes NumPy is told about np.tanh, not torch.tanh. Only these exact phrases are changed.
NUMPY_WORDS = (("torch.zeros_like(x)", "np.zeros_like(x)"), ("torch.zeros_like", "np.zeros_like"),
               ("torch.tanh / torch.sigmoid", "np.tanh, and a sigmoid that never takes exp of a large positive "
                "number"), ("torch.tanh", "np.tanh"), ("torch.sigmoid", "a stable sigmoid"),
               ("torch.softmax and torch.logsumexp do", "a stable softmax does"),
               ("use torch.softmax", "write a stable softmax"), ("torch.softmax", "a stable softmax"),
               ("torch.logsumexp", "a stable log-sum-exp"), ("torch.arange", "np.arange"),
               ("torch.argmax", "np.argmax"), ("torch.where", "np.where"), ("torch.einsum", "np.einsum"),
               ("torch.cat", "np.concatenate"), ("torch.stack", "np.stack"), ("torch.flip", "np.flip"),
               (".clone()", ".copy()"), ("as tensor operations", "as array operations"),
               ("dW.index_add_(0, x.reshape(-1), dout.reshape(-1, D)); dW[x] = dout keeps only one occurrence",
                "np.add.at(dW, x.reshape(-1), dout.reshape(-1, D)); dW[x] = dout and dW[x] += dout keep only one "
                "occurrence"),
               ("scores.masked_fill(~mask, float('-inf'))", "np.where(mask, scores, -np.inf)"),
               ("clamp to", "np.clip to"), ("(dim=1)", "(axis=1)"))
# ... and these patterns: a tensor's .flip(d) is np.flip(..., axis=d) for an array, "tensor" is "array".
NUMPY_PATTERNS = ((re.compile(r"\b(x|dh\[:, :, H:\])\.flip\((\d)\)"), r"np.flip(\1, axis=\2)"),
                  (re.compile(r"\(\.flip\((\d)\)\)"), r"(np.flip(..., axis=\1))"),
                  (re.compile(r"\btensor(s?)\b"), r"array\1"))


def numpy_words(text):
    """text with the torch track's words for the NumPy track's (NUMPY_WORDS, NUMPY_PATTERNS): the grader's own
    text only (hints, advice), never a student's."""
    for torch_words, words in NUMPY_WORDS:
        text = text.replace(torch_words, words)
    for pattern, words in NUMPY_PATTERNS:
        text = pattern.sub(words, text)
    return text


def describe_type(value):
    """Student-facing name of a returned value's type."""
    if isinstance(value, Received):
        if value.array == "ndarray":
            return "numpy.ndarray"
        if value.array == "scalar":
            return "numpy.%s" % str(value.dtype).replace("torch.", "")
        if value.array == "number":
            return "float"
        return "torch.Tensor"
    if isinstance(value, Other):
        return value.type
    return type(value).__name__


def relative_error(got, expected):
    """(largest relative error, index of it) between two same-shape tensors, in float64."""
    g = got.to(torch.float64)
    e = expected.to(torch.float64)
    if e.numel() == 0:
        return 0.0, ()
    scale = e.abs().max().item()
    denom = torch.clamp(e.abs(), min=max(FLOOR * scale, TINY))
    err = (g - e).abs() / denom
    err = torch.where(torch.isnan(err), torch.full_like(err, math.inf), err)
    flat = int(torch.argmax(err))
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), e.shape)) if e.dim() else ()
    return float(err.reshape(-1)[flat]), index


def fmt_index(index):
    return "[" + ", ".join(str(i) for i in index) + "]"


def fmt_num(x):
    return "%.6g" % x


def _device_type(text):
    """The device type a received tensor names ("cpu", "cuda"), or None: the name comes from the worker's
    answer, which student code can write itself, and may be anything."""
    try:
        return torch.device(text).type
    except (RuntimeError, TypeError, ValueError):
        return None


def check_tensor(name, got, expected, dtype, device, rtol, track="torch"):
    """Check one returned tensor. Returns None when right, else (message, value_mismatch).

    track "numpy" (plans.TRACKS): got must be a NumPy array or scalar, or a Python float or int where the
    answer is a single float (a loss), whose dtype then goes unchecked; no device is checked."""
    if track == "numpy":
        return _check_array(name, got, expected, dtype, rtol)
    if not isinstance(got, Received) or got.array is not None:
        return "%s should be a torch.Tensor, got %s" % (name, describe_type(got)), False
    if got.shape != tuple(expected.shape):
        return _shape_problem(name, got, expected), False
    want_dtype = expected.dtype if not expected.is_floating_point() else dtype
    if got.dtype != want_dtype:
        msg = "%s has dtype %s, expected %s (the inputs' dtype)" % (
            name, str(got.dtype).replace("torch.", ""), str(want_dtype).replace("torch.", ""))
        if want_dtype.is_floating_point:
            msg += ": create new tensors with dtype=x.dtype, or with x.new_zeros(...)/torch.zeros_like(x)"
        return msg, False
    if _device_type(got.device) != torch.device(device).type:
        return ("%s is on %s, expected %s (where the inputs are): create new tensors with "
                "device=x.device" % (name, str(got.device)[:40], device)), False
    return _check_values(name, got, expected, rtol)


def _shape_problem(name, got, expected):
    """What to say of a returned value of the wrong shape, with the likely cause where the shapes show it."""
    msg = "%s has shape %s, expected %s" % (name, tuple(got.shape), tuple(expected.shape))
    if got.shape == tuple(reversed(expected.shape)) and len(got.shape) == 2:
        msg += " (transposed?)"
    elif got.data.numel() == expected.numel() and 1 in expected.shape and len(got.shape) < expected.dim():
        msg += " (a dimension of size 1 went missing: a squeeze, or x[:, 0] instead of x[:, 0:1]?)"
    elif got.data.numel() == expected.numel():
        msg += " (same number of elements: a reshape or a transpose in the wrong order?)"
    return msg


def as_number(got, expected):
    """The NumPy track's Python float or int where a single float is expected (a loss), as a float64 Received
    marked "number" (its dtype goes unchecked); anything else as it is."""
    if type(got) in (float, int) and expected.dim() == 0 and expected.is_floating_point():
        try:
            return Received(torch.tensor(float(got), dtype=torch.float64), "cpu", False, "number")
        except OverflowError:  # an int of 400 digits
            return Received(torch.tensor(math.inf, dtype=torch.float64), "cpu", False, "number")
    return got


def _check_array(name, got, expected, dtype, rtol):
    """check_tensor in the NumPy track, in NumPy's words."""
    got = as_number(got, expected)
    if isinstance(got, Received) and got.array == "number":  # a loss returned as a Python float: fine
        return _check_values(name, got, expected, rtol)
    want_dtype = expected.dtype if not expected.is_floating_point() else dtype
    want = str(want_dtype).replace("torch.", "")
    if isinstance(got, Other) and got.type.startswith("numpy.ndarray("):  # wire.encode: a dtype it does not carry
        have = got.type[len("numpy.ndarray("):].rsplit(", ", 1)[0]
        return ("%s has dtype %s, expected %s (the inputs' dtype): return an array of plain numbers, "
                "np.asarray(..., dtype=x.dtype)" % (name, have, want)), False
    if not isinstance(got, Received) or got.array is None:
        return "%s should be a NumPy array, got %s" % (name, describe_type(got)), False
    if got.shape != tuple(expected.shape):
        return _shape_problem(name, got, expected), False
    want_dtype = expected.dtype if not expected.is_floating_point() else dtype
    if got.dtype != want_dtype:
        have, want = str(got.dtype).replace("torch.", ""), str(want_dtype).replace("torch.", "")
        msg = "%s has dtype %s, expected %s (the inputs' dtype)" % (name, have, want)
        if want_dtype.is_floating_point and have == "float64":
            msg += (": np.zeros(...), np.ones(...) and np.empty(...) make float64 arrays unless told otherwise "
                    "(create new arrays with dtype=x.dtype, or with np.zeros_like(x)), and a float64 value mixed "
                    "into float32 arithmetic makes the result float64 (np.sqrt(D), np.float64(...), "
                    ".astype(float), np.array(a Python float): use Python floats or math.sqrt for constants, "
                    "and .astype(x.dtype))")
        elif want_dtype.is_floating_point:
            msg += ": create new arrays with dtype=x.dtype, or with np.zeros_like(x)"
        elif want == "int64":
            msg += ": make indices with dtype=np.int64 (or .astype(np.int64))"
        return msg, False
    return _check_values(name, got, expected, rtol)


def _check_values(name, got, expected, rtol):
    """The values of a returned tensor or array of the right kind, shape and dtype."""
    if not expected.is_floating_point():
        if not torch.equal(got.data, expected.cpu()):
            wrong = (got.data != expected.cpu()).nonzero()[0].tolist()
            return "%s is wrong at %s: expected %s, got %s" % (
                name, fmt_index(wrong), expected.cpu()[tuple(wrong)].item(), got.data[tuple(wrong)].item()), True
        return None
    exp = expected.detach().to("cpu", torch.float64)
    g = got.data.to(torch.float64)
    bad = ~torch.isfinite(g) & torch.isfinite(exp)
    if bad.any():
        where = bad.nonzero()[0].tolist() if g.dim() else []
        return "%s contains %s at %s where the expected value is %s (overflow or an unstable " \
               "formula?)" % (name, fmt_num(g[tuple(where)].item()), fmt_index(where),
                              fmt_num(exp[tuple(where)].item())), True
    err, index = relative_error(g, exp)
    if err > rtol:
        where = " at %s" % fmt_index(index) if index else ""
        return ("%s is wrong: largest relative error %.2e (tolerance %.0e)%s: expected %s, got %s"
                % (name, err, rtol, where, fmt_num(exp[index].item()), fmt_num(g[index].item()))), True
    return None


OVERFLOW_HINT = ("exp overflowed for large inputs: use torch.tanh / torch.sigmoid, or subtract the maximum "
                 "before exp (torch.softmax and torch.logsumexp do)")
LARGE_INPUT = 10.0  # inputs this large can push a hand-written exp past float32's range (exp(89) = inf)


def overflowed(got, expected, inputs):
    """Whether a wrong output looks like exp overflowing: NaN or inf where the expected value is
    finite, with finite inputs of which some are large (inputs: name -> float64 tensor or other)."""
    if not (~torch.isfinite(got) & torch.isfinite(expected.to(got.device))).any():
        return False
    floats = [v for v in inputs.values() if torch.is_tensor(v) and v.is_floating_point() and v.numel()]
    return all(bool(torch.isfinite(v).all()) for v in floats) and \
        any(float(v.abs().max()) >= LARGE_INPUT for v in floats)


def in_place_message(names, track="torch"):
    """What to say when a function modified some of its inputs in place: each one named, with the fix. An
    entry of a dict argument (its input name "grads.W_embed", spec.DictArg) is named grads['W_embed']."""
    fixes, shown = [], []
    for name in names:
        if "." in name:  # an entry of a dict argument: the fix is a new dict of new tensors
            arg, key = name.split(".", 1)
            shown.append("%s[%r]" % (arg, key))
            fixes.append("build a new dict of new tensors (`{k: g * scale for k, g in %s.items()}`) instead of "
                         "changing %s's tensors (`%s[k] *= ...`); a copy of the dict alone still shares them"
                         % (arg, arg, arg))
            continue
        shown.append(name)
        new = "d" + name[len("dnext_"):] if name.startswith("dnext_") else name + "_new"
        fixes.append("write `%s = %s + ...` (a new tensor) instead of `%s += ...` (or start from "
                     "`%s.clone()`)" % (new, name, name, name))
    text = ("modified its input%s %s in place: inputs must be left unchanged (the caller still needs "
            "them). For %s" % ("s" if len(names) > 1 else "", ", ".join(shown),
                              "; for ".join("%s, %s" % (n, f) for n, f in zip(shown, fixes))))
    return numpy_words(text) if track == "numpy" else text


def value_hints(got, expected, sizes, time_axis=None):
    """Generic hints for a same-shape value mismatch (scaled, transposed, zero, some steps)."""
    g = got.to(torch.float64)
    e = expected.detach().to("cpu", torch.float64)
    hints = []
    if e.abs().max() == 0:
        return hints
    if g.abs().max() == 0:
        return ["it is all zeros: is the value ever written, or the gradient ever accumulated?"]
    ee = float((e * e).sum())
    c = float((g * e).sum()) / ee
    resid = float(((g - c * e) ** 2).sum()) ** 0.5
    if resid <= MATCH * float((g * g).sum()) ** 0.5 and abs(c - 1) > MATCH:
        hints.append("it equals the expected value times %s%s" % (fmt_num(c), _scale_story(c, sizes)))
    if e.dim() == 2 and e.shape[0] == e.shape[1] and (g - e.T).abs().max() <= MATCH * e.abs().max():
        hints.append("it equals the transpose of the expected value")
    if time_axis is not None and e.dim() > time_axis and e.shape[time_axis] > 1:
        T = e.shape[time_axis]
        wrong = []
        for t in range(T):
            gt, et = g.select(time_axis, t), e.select(time_axis, t)
            if relative_error(gt, et)[0] > MATCH:
                wrong.append(t)
        if wrong and len(wrong) < T:
            hints.append("it is right at t = %s and wrong at t = %s" % (
                _fmt_steps([t for t in range(T) if t not in wrong]), _fmt_steps(wrong)))
    return hints


def _fmt_steps(steps):
    if len(steps) > 6:
        return "%s ... %s" % (", ".join(map(str, steps[:3])), ", ".join(map(str, steps[-2:])))
    return ", ".join(map(str, steps))


def _scale_story(c, sizes):
    """Name the factor c in terms of the case's sizes (1/N: averaged instead of summed, ...)."""
    stories = [(-1.0, " (the sign is flipped)")]
    N, T = sizes.get("N"), sizes.get("T")
    if N and N > 1:
        stories += [(1.0 / N, " = 1/N: averaged over the batch where it should be summed?"),
                    (float(N), " = N: summed where it should be averaged over the batch?")]
    if T and T > 1:
        stories += [(1.0 / T, " = 1/T: divided by the number of time steps?"),
                    (float(T), " = T")]
    if N and T and N * T > 1:
        stories += [(1.0 / (N * T), " = 1/(N*T): averaged over batch and time instead of over the batch only?")]
    for value, story in stories:
        if abs(c - value) <= MATCH * abs(value):
            return story
    return ""
