"""Student-facing words for what the worker sent back: errors, return structures, hints.

Used by the runner (runner.evaluate) and the vectorisation check (speed.py); kept apart so that
the grading loop stays short.
"""
import torch

from . import compare
from .sandbox import Limits

MEMORY_WORDS = ("can't allocate memory", "out of memory", "cannot allocate memory", "DefaultCPUAllocator")


def format_error(err, limits=None):
    """Student-facing text of an exception the worker reported (type, message, their frames)."""
    if not isinstance(err, dict):
        return "unknown error"
    # Every field comes from the worker's answer, which student code can write itself: any type at all.
    err = {k: (v if isinstance(v, str) else "" if v is None else repr(v)[:200]) for k, v in err.items()}
    text = "%s: %s" % (err.get("type") or "Error", err.get("message", ""))
    if err.get("type") == "MemoryError" or any(w in str(err.get("message", "")) for w in MEMORY_WORDS):
        text += ("\n(the worker's memory limit of %s MB was reached: AUTOGRADER_MEMORY_MB raises it)"
                 % (limits or Limits.from_env()).memory_mb)
    elif "File too large" in str(err.get("message", "")):
        text += ("\n(the file-size limit of %d MB was reached: AUTOGRADER_FSIZE_MB)"
                 % (limits or Limits.from_env()).fsize_mb)
    elif err.get("type") == "BlockingIOError" or "Resource temporarily unavailable" in str(err.get("message", "")):
        text += "\n(the process/thread limit was reached: AUTOGRADER_NPROC)"
    if err.get("trace"):
        text += "\n" + err["trace"]
    return text


def unpack(fn, value):
    """The returned values by name, or an error message about the return structure."""
    names = fn.returns
    if len(names) == 1:
        return {names[0]: value}, None
    if not isinstance(value, (tuple, list)):
        return None, "%s returned %s, expected a tuple of %d (%s)" % (
            fn.name, compare.describe_type(value), len(names), ", ".join(names))
    if len(value) != len(names):
        return None, "%s returned a tuple of %d values, expected %d (%s)" % (
            fn.name, len(value), len(names), ", ".join(names))
    return dict(zip(names, value)), None


def hints(prep, name, got):
    """The hints for a wrong value of output `name` (prep: the runner's Prepared check)."""
    fn = prep.fn
    g = got.data.to(torch.float64)
    exp = prep.expected[name]
    overflow = [compare.OVERFLOW_HINT] if compare.overflowed(g, exp, prep.inputs64) else []
    found = []
    for mistake in fn.mistakes:
        try:
            if mistake.detect(prep.inputs64, name, g, exp):
                found.append(mistake.hint)
        except Exception:  # a hint detector must never break grading
            continue
    if not found and not overflow:
        found = compare.value_hints(g, exp, prep.case.sizes, fn.time_axis.get(name))
    text = "".join("\nHint: %s" % h for h in overflow + found)
    # The NumPy track's hints in NumPy's words (np.tanh, not torch.tanh): the grader's text only, never what the
    # student's code said or wrote.
    return compare.numpy_words(text) if getattr(prep, "track", "torch") == "numpy" else text
