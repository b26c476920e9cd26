"""The registry: every graded function of the assignment, in handout order.

The single source of truth for what is graded: each entry (autograder/parts/<file>.py) holds a
function's points, input maker, torch oracle, cases and hints. Everything else derives from it.
"""
from . import paths
from .engine import plans
from .parts import attention, lstm_layers, rnn_layers, tbptt

PARTS = [rnn_layers, lstm_layers, tbptt, attention]
FUNCTIONS = [fn for part in PARTS for fn in part.FUNCTIONS]
BY_NAME = {fn.name: fn for fn in FUNCTIONS}
FILES = list(dict.fromkeys(fn.file for fn in FUNCTIONS))  # module names, in order


def select(names=None, files=None):
    """The registry entries with the given function names and/or files (all by default)."""
    out = FUNCTIONS
    if files:
        unknown = set(files) - set(FILES)
        if unknown:
            raise KeyError("unknown file(s): %s" % ", ".join(sorted(unknown)))
        out = [fn for fn in out if fn.file in files]
    if names:
        unknown = set(names) - set(BY_NAME)
        if unknown:
            raise KeyError("unknown function(s): %s" % ", ".join(sorted(unknown)))
        out = [fn for fn in out if fn.name in names]
    return out


def plan(functions=None, device="auto", seed=None, public_inputs="fresh", track="torch"):
    """The plan (engine/plans.py) of `functions` (default: all) for this kit and `track` (course.toml's): a
    backward's forward is found among FUNCTIONS, the vectorisation checks time the track's reference
    solutions, and the kit's own folders are hidden from every worker."""
    return plans.build_plan(FUNCTIONS if functions is None else functions, device, seed, public_inputs,
                            library=FUNCTIONS, reference=paths.solutions(track), kit=paths.KIT_ROOT, track=track)
