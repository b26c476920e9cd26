"""The NumPy track's corpora of realistic buggy variants, one module per student file.

The twins of tests/buggy/ (the torch track's): each module defines BUGS, a list of Bug (the same
dataclass), edits of the NumPy reference solutions (solutions/numpy/): the torch corpus's mistakes
written in NumPy wherever they have an equivalent, and NumPy's own (np.zeros without dtype, `+=` on
an argument, np.squeeze, np.exp overflowing in float32, float64 scalars upcasting float32, np.dot
against `*`, sums over the wrong axis, keepdims forgotten, a reshape for a transpose). `breaks` must
lose points, every other function of the file must keep full marks, and `hint`, when given, must
appear in the feedback of breaks[0].
"""
from buggy import Bug  # noqa: F401  (tests/ is on sys.path: tests/conftest.py)
