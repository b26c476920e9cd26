"""Corpora of realistic buggy variants of the reference solutions, one module per student file.

Each module defines BUGS, a list of Bug: edits applied to the solution file and the functions
that must lose points (every other function of the file must keep full marks). `hint`, when
given, must appear in the feedback of the first broken function.
"""
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple


@dataclass(frozen=True)
class Bug:
    name: str
    file: str  # e.g. "rnn_layers.py"
    edits: Sequence[Tuple[str, str]]  # (old, new) pairs, each old found exactly once
    breaks: Sequence[str]  # functions that must lose points
    hint: Optional[str] = None  # substring expected in the feedback of breaks[0]
