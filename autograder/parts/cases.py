"""cases.py: the cases every part file builds the same way, and the sizes several of them share.

The usual checks of a function (public small cases, hidden medium, edge, saturated and CUDA ones)
come from standard_cases; tbptt.py and attention.py assemble their own lists from cuda_cases,
saturated_cases and edge_cases. The sizes of one recurrent step and of a recurrent sequence are
the same for the vanilla RNN and the LSTM, so that both layers are checked on the same shapes.

These helpers live here, beside the part files, and not in engine/spec.py: they name the hidden
cases, and the engine ships with the student's public checker while autograder/parts/ never does.
The grading results name the cases, and the public checker's inputs come from the public cases'
seeds: a change of a name, a seed or the order here changes the cases of many functions at once.
"""
import torch

from ..engine.spec import CUDA_SMALL, Case

# --------------------------------------------------------------------------- shared sizes
# One recurrent step (rnn_step_*, lstm_step_*) and a whole sequence (rnn_*, birnn_*, lstm_*).
STEP_SMALL, STEP_MEDIUM = dict(N=3, D=4, H=5), dict(N=10, D=12, H=16)
SEQ_SMALL, SEQ_MEDIUM = dict(N=2, T=3, D=4, H=5), dict(N=6, T=9, D=7, H=8)
SEQ_EDGES = [("T=1", dict(N=3, T=1, D=4, H=5), {}), ("N=1", dict(N=1, T=5, D=4, H=5), {}),
             ("H=1", dict(N=3, T=4, D=4, H=1), {}), ("long sequence T=30", dict(N=2, T=30, D=3, H=4), {})]
# The vectorisation check's input for a sequence (speed.py): a Python loop over the batch takes well
# over 10x the reference (a loop over time is allowed).
SEQ_SPEED = dict(N=64, T=8, D=16, H=16)
# The makers' opts for the saturated cases of the recurrent layers: pre-activations of 50-100, where
# tanh and the sigmoid gates saturate and exp overflows in float32 (common.saturate).
BIG_WEIGHTS = {"saturate": 80.0}


def step_edges(saturates):
    """The hidden edge cases of one recurrent step: N, H and D of 1, and weights six times larger,
    where `saturates` ("tanh", "gates") saturates in float64 too."""
    return [("N=1", dict(N=1, D=4, H=5), {}), ("H=1", dict(N=3, D=4, H=1), {}),
            ("D=1", dict(N=3, D=1, H=5), {}),
            ("saturated %s (large weights)" % saturates, dict(N=4, D=6, H=5), {"weight_scale": 6.0})]


# --------------------------------------------------------------------------- case helpers
def options(opts):
    """Case.opts from a dict of the maker's options: its items, sorted by key."""
    return tuple(sorted(opts.items()))


def edge_cases(edges):
    """Hidden float64 CPU cases from (name, sizes, opts-dict) triples, in their order."""
    return [Case(name, sizes, torch.float64, hidden=True, opts=options(opts)) for name, sizes, opts in edges]


SATURATED = "float32, saturated (pre-activations of 50-100)"  # what the inputs are, not what a bug does
# float32 holds 50-100 only to about 4e-6 (half a unit in the last place), so outputs near zero, such
# as softmax(x) - 1 for a winning score of 90, carry that absolute error: over 600 seeds the
# reference reached 1.6e-2 of relative error here (additive attention's backward; 7e-3 for the loss;
# compare.relative_error; 1e-3 elsewhere in float32). An overflow gives inf or NaN, and a wrong
# formula errors of order 1: both stay far outside.
SATURATED_RTOL = 5e-2


def saturated_cases(small, medium, opts, rtol=None):
    """float32 cases whose pre-activations reach 50-100, where exp overflows in float32 while torch's
    float64 answer stays finite: a hand-written tanh, sigmoid or softmax fails them. A public small
    one (so the overflow hint shows before the deadline) and a hidden medium one."""
    opts, rtol = options(opts), rtol or SATURATED_RTOL
    return [Case(SATURATED, small, torch.float32, seed=4, opts=opts, rtol=rtol),
            Case(SATURATED + ", medium", medium, torch.float32, hidden=True, opts=opts, rtol=rtol)]


def standard_cases(small, medium, edges=(), float32_small=True, cuda=True, saturate=None, saturated_rtol=None):
    """The usual checks of a function: public small cases, hidden medium ones, edge cases, CUDA.

    small, medium: size dicts. edges: (name, sizes, opts-dict) triples, hidden. saturate: the
    maker's opts that push pre-activations to 50-100 (functions that apply tanh, sigmoid, exp or
    softmax), for saturated_cases (saturated_rtol: their tolerance, when not SATURATED_RTOL).
    """
    public_cuda, *hidden_cuda = cuda_cases(small, medium) if cuda else (None,)
    cases = [
        Case("float64, small", small, torch.float64, seed=1),
    ]
    if cuda:  # second: a lost device shows before the deadline, ahead of the value checks
        cases.append(public_cuda)
    if float32_small:
        cases.append(Case("float32, small (dtype kept)", small, torch.float32, seed=2))
    saturated = saturated_cases(small, medium, saturate, saturated_rtol) if saturate else []
    cases += saturated[:1] + [
        Case("float64, medium", medium, torch.float64, hidden=True),
        Case("float32, medium", medium, torch.float32, hidden=True),
    ] + saturated[1:]
    return cases + edge_cases(edges) + hidden_cuda


def cuda_cases(small, medium):
    """The CUDA checks (run only where a GPU is present): a public small one, so that a student whose
    code loses the device ("h is on cpu, expected cuda") sees it before the deadline, and hidden
    medium ones in float64 and float32."""
    return [Case(CUDA_SMALL, small, torch.float64, device="cuda", seed=5),
            Case("float64 on CUDA, medium", medium, torch.float64, device="cuda", hidden=True),
            Case("float32 on CUDA, medium", medium, torch.float32, device="cuda", hidden=True)]


# --------------------------------------------------------------------------- sizes of 1
# Every size a function's cases use (N, T, D, H, V, L, heads, ...) is 1 in some case of it, while other
# sizes of that case are above 1 (issue 20; tests/test_sizes.py checks the registry). Code that squeezes
# a slice, x[:, t, :].squeeze(), is right until D=1 turns the (N, D) slice into (N,): N=3, T=4, D=1,
# H=5 catches it, and N=1 alone does not. The edge cases above give most sizes their 1; where none
# does, a part file appends size_one_cases to the function's cases, after every other case (the
# other cases keep their order, names and seeds; hidden ones draw their seeds from their names).
# Hidden: a failing one still shows its name and sizes ("D=1 (float64, cpu, N=3 T=4 D=1 H=5)
# [hidden]") on every submission, before the deadline. Half a check's weight each: a squeeze is one
# mistake, and a function may get several of these cases.
SIZE_ONE_WEIGHT = 0.5


def size_one_cases(base, sizes):
    """Hidden float64 CPU cases, one per entry of `sizes`, each `base` with that size set to 1.

    base: a size dict whose sizes are all above 1, unless noted where it is called. An entry is a size
    name ("D"), or a tuple of names that must be 1 together (("E", "heads"): the heads divide E), and
    names its case "D=1" or "E=1, heads=1".
    """
    cases = []
    for entry in sizes:
        names = (entry,) if isinstance(entry, str) else tuple(entry)
        assert all(n in base for n in names), (names, base)
        cases.append(Case(", ".join("%s=1" % n for n in names), dict(base, **{n: 1 for n in names}), torch.float64,
                          hidden=True, weight=SIZE_ONE_WEIGHT))
    return cases


# The sequence layers (rnn_*, birnn_*, lstm_*): SEQ_EDGES gives N, T and H a 1; D has none.
SEQ_SIZE_ONE = size_one_cases(dict(N=3, T=4, D=4, H=5), ["D"])
