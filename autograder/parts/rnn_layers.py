"""rnn_layers.py: vanilla RNN, bidirectional RNN, word embeddings, temporal affine and loss.

For each graded function: its input maker, its torch oracle (torch.nn.RNN / RNNCell,
F.embedding, F.linear, F.cross_entropy; every gradient from autograd), its cases and the
known mistakes that earn a hint. The FUNCTIONS list at the bottom is this file's registry.
"""
import torch
import torch.nn.functional as F
from torch.func import functional_call

from ..engine import forbidden
from ..engine.detectors import repeated_words_overwritten, transposed_weight_grad
from ..engine.spec import CACHE, GradedFunction, Mistake
from .cases import (BIG_WEIGHTS, SEQ_EDGES, SEQ_MEDIUM, SEQ_SIZE_ONE, SEQ_SMALL, SEQ_SPEED, STEP_MEDIUM, STEP_SMALL,
                    size_one_cases, standard_cases, step_edges)
from .common import (F64, backward_maker, grads, layer_oracles, leaves, model_mistake, randint, randn, saturate,
                     saturate_bias)

FILE = "rnn_layers"


# --------------------------------------------------------------------------- oracles
def _rnn_module(D, H, device, bidirectional=False):
    return torch.nn.RNN(D, H, nonlinearity="tanh", batch_first=True, bidirectional=bidirectional,
                        dtype=F64, device=device)


def torch_rnn(x, h0, Wx, Wh, b):
    """torch.nn.RNN with our weights (x @ Wx convention, one bias): h (N, T, H)."""
    D, H = Wx.shape
    params = {"weight_ih_l0": Wx.T, "weight_hh_l0": Wh.T, "bias_ih_l0": b,
              "bias_hh_l0": torch.zeros_like(b)}
    with torch.backends.cudnn.flags(enabled=False):
        h, _ = functional_call(_rnn_module(D, H, x.device), params, (x, h0.unsqueeze(0)))
    return h


def _torch_birnn(i):
    D, H = i["Wx_f"].shape
    params = {"weight_ih_l0": i["Wx_f"].T, "weight_hh_l0": i["Wh_f"].T, "bias_ih_l0": i["b_f"],
              "bias_hh_l0": torch.zeros_like(i["b_f"]),
              "weight_ih_l0_reverse": i["Wx_b"].T, "weight_hh_l0_reverse": i["Wh_b"].T,
              "bias_ih_l0_reverse": i["b_b"], "bias_hh_l0_reverse": torch.zeros_like(i["b_b"])}
    h0 = torch.stack([i["h0_f"], i["h0_b"]])  # (2, N, H): direction-major
    with torch.backends.cudnn.flags(enabled=False):
        h, _ = functional_call(_rnn_module(D, H, i["x"].device, bidirectional=True), params, (i["x"], h0))
    return h


def _torch_rnn_step(i):
    D, H = i["Wx"].shape
    cell = torch.nn.RNNCell(D, H, nonlinearity="tanh", dtype=F64, device=i["x"].device)
    params = {"weight_ih": i["Wx"].T, "weight_hh": i["Wh"].T, "bias_ih": i["b"],
              "bias_hh": torch.zeros_like(i["b"])}
    return functional_call(cell, params, (i["x"], i["prev_h"]))


STEP_ARGS = ("x", "prev_h", "Wx", "Wh", "b")
SEQ_ARGS = ("x", "h0", "Wx", "Wh", "b")
BI_ARGS = ("x", "h0_f", "h0_b", "Wx_f", "Wh_f", "b_f", "Wx_b", "Wh_b", "b_b")


rnn_step_forward_oracle, rnn_step_backward_oracle = layer_oracles(
    _torch_rnn_step, ("next_h",), STEP_ARGS, ("dnext_h",))
rnn_forward_oracle, rnn_backward_oracle = layer_oracles(
    lambda i: torch_rnn(*(i[n] for n in SEQ_ARGS)), ("h",), SEQ_ARGS, ("dh",))
birnn_forward_oracle, birnn_backward_oracle = layer_oracles(_torch_birnn, ("h",), BI_ARGS, ("dh",))
word_embedding_forward_oracle, word_embedding_backward_oracle = layer_oracles(
    lambda i: F.embedding(i["x"], i["W"]), ("out",), ("W",), ("dout",))
temporal_affine_forward_oracle, temporal_affine_backward_oracle = layer_oracles(
    lambda i: F.linear(i["x"], i["w"].T, i["b"]), ("out",), ("x", "w", "b"), ("dout",))


def _torch_loss(x, y, mask):
    N, T, V = x.shape
    per_step = F.cross_entropy(x.reshape(N * T, V), y.reshape(N * T), reduction="none").reshape(N, T)
    return (per_step * mask.to(x.dtype)).sum() / N


def temporal_softmax_loss_oracle(i):
    i = leaves(i, ("x",))
    loss = _torch_loss(i["x"], i["y"], i["mask"])
    return {"loss": loss.detach(), "dx": grads(loss, torch.ones_like(loss), i, ("x",))["x"]}


# --------------------------------------------------------------------------- input makers
def make_step(g, case, backward=False):
    N, D, H = (case.sizes[k] for k in "NDH")
    scale = case.opt("weight_scale", 1.0)
    i = {"x": randn(g, N, D), "prev_h": randn(g, N, H),
         "Wx": saturate(randn(g, D, H, scale=scale / D ** 0.5), case),
         "Wh": saturate(randn(g, H, H, scale=scale / H ** 0.5), case), "b": saturate_bias(randn(g, H, scale=0.5), case)}
    if backward:
        i["dnext_h"] = randn(g, N, H)
    return i


def make_seq(g, case, backward=False):
    N, T, D, H = (case.sizes[k] for k in "NTDH")
    i = {"x": randn(g, N, T, D), "h0": randn(g, N, H),
         "Wx": saturate(randn(g, D, H, scale=1 / D ** 0.5), case),
         "Wh": saturate(randn(g, H, H, scale=1 / H ** 0.5), case),
         "b": saturate_bias(randn(g, H, scale=0.5), case)}
    if backward:
        i["dh"] = randn(g, N, T, H)
    return i


def make_bi(g, case, backward=False):
    N, T, D, H = (case.sizes[k] for k in "NTDH")
    i = {"x": randn(g, N, T, D), "h0_f": randn(g, N, H), "h0_b": randn(g, N, H)}
    for d in ("f", "b"):
        i["Wx_" + d] = saturate(randn(g, D, H, scale=1 / D ** 0.5), case)
        i["Wh_" + d] = saturate(randn(g, H, H, scale=1 / H ** 0.5), case)
        i["b_" + d] = saturate_bias(randn(g, H, scale=0.5), case)
    if backward:
        i["dh"] = randn(g, N, T, 2 * H)
    return i


def make_embed(g, case, backward=False):
    N, T, V, D = (case.sizes[k] for k in "NTVD")
    x = randint(g, V, N, T)
    if case.opt("one_word"):
        x = torch.full((N, T), V - 1, dtype=torch.int64)
    i = {"x": x, "W": randn(g, V, D)}
    if backward:
        i["dout"] = randn(g, N, T, D)
    return i


def make_affine(g, case, backward=False):
    N, T, D, M = (case.sizes[k] for k in "NTDM")
    i = {"x": randn(g, N, T, D), "w": randn(g, D, M, scale=1 / D ** 0.5), "b": randn(g, M)}
    if backward:
        i["dout"] = randn(g, N, T, M)
    return i


def make_loss(g, case):
    N, T, V = (case.sizes[k] for k in "NTV")
    x = randn(g, N, T, V, scale=case.opt("score_scale", 1.0))
    y = randint(g, V, N, T)
    kind = case.opt("mask", "random")
    if kind == "all":
        mask = torch.ones(N, T, dtype=torch.bool)
    elif kind == "mostly_false":  # one allowed step per row, at a random place; one row empty
        mask = torch.zeros(N, T, dtype=torch.bool)
        mask[torch.arange(N), randint(g, T, N)] = True
        mask[0] = False
    else:
        mask = torch.rand(N, T, generator=g, dtype=F64) < 0.7
        mask[:, 0] = True  # every row counts somewhere
    return {"x": x, "y": y, "mask": mask}



# --------------------------------------------------------------------------- mistakes
# Models of the buggy code (trusted side only): the vanilla RNN written out, with switches for the
# usual mistakes. The step's local derivative is local(next_h), next_h = tanh(a).
def _tanh_grad(h):
    return 1 - h * h


TANH_MISTAKES = [  # (hint, what the buggy code multiplies dnext_h by)
    ("the tanh derivative is 1 - tanh(a)**2 = 1 - next_h**2; this looks like 1 - next_h", lambda h: 1 - h),
    ("the tanh derivative is 1 - next_h**2 (next_h is already tanh(a)); this looks like 1 - tanh(next_h)**2",
     lambda h: 1 - torch.tanh(h) ** 2),
    ("that is the sigmoid's derivative h*(1-h); tanh's is 1 - h**2", lambda h: h * (1 - h)),
    ("the gradient skipped the tanh: multiply dnext_h by 1 - next_h**2 first", torch.ones_like),
    ("dnext_h was multiplied by next_h = tanh(a), the value of tanh, not its derivative: the tanh's "
     "derivative is 1 - next_h**2, so da = dnext_h * (1 - next_h**2)", lambda h: h),
]
WH_NOT_TRANSPOSED = ("dprev_h multiplies by Wh; it must be Wh.T: a = prev_h @ Wh + ..., so dprev_h = da @ Wh.T "
                     "(Wh is square, so the shapes agree either way and only the values show it)")
TRANSPOSED_DW = ("it equals the transpose of the right gradient: for a = x @ Wx + prev_h @ Wh + b the weight "
                 "gradients are dWx = x.T @ da and dWh = prev_h.T @ da (a square matrix has the same shape "
                 "transposed, so only the values show it)")
NO_CARRY = ("the gradient that flows back from step t+1 into h[:, t] is not added: at each step "
            "use dh[:, t] + dprev_h")
OVERWRITTEN = ("a weight gradient holds only the last step the loop reached (t = 0): dWx, dWh and db must be "
               "added up over the time steps (the same weights are used at every step), "
               "dWx = dWx + dWx_t, not overwritten at every step (dWx = dWx_t)")
FORWARD_IN_TIME = ("the backward loop runs forward in time: backpropagation through time walks backwards, "
                   "for t in reversed(range(T)), because step t needs the gradient that flows back from "
                   "step t+1 (dprev_h starts as zeros at t = T-1)")
NO_BIAS = "next_h looks like tanh(x @ Wx + prev_h @ Wh) without the bias: add b inside the tanh"
NO_TANH = "next_h looks like the pre-activation x @ Wx + prev_h @ Wh + b: apply torch.tanh to it"
H0_IGNORED = ("the first step does not start from h0 (this looks like a start from zeros): begin the loop "
              "with prev_h = h0")
H_SHIFTED = ("h[:, t] holds the state BEFORE reading x[:, t] (h0 at t = 0): it must be the state after "
             "reading x[:, t], the one rnn_step_forward returns at step t")
BI_NOT_FLIPPED_BACK = ("h[:, :, H:] is in reversed time: the backward RNN read x from t = T-1 down to 0, so "
                       "flip its states back (.flip(1)) before the concatenation, so that h[:, t, H:] is its "
                       "state after reading x[:, t]")
BI_NOT_REVERSED = ("the backward RNN reads x in the same order as the forward one: run it on x.flip(1) "
                   "(from t = T-1 down to 0, starting at h0_b) and flip its states back")
BI_DX_NOT_FLIPPED = ("the backward RNN's part of dx is in reversed time: it ran on x.flip(1), so flip its dx "
                     "back (.flip(1)) before adding it to the forward RNN's dx")
BI_DH_NOT_FLIPPED = ("the backward RNN gets its upstream gradient in the wrong time order: it ran on reversed "
                     "time, so pass it dh[:, :, H:].flip(1) (and flip its dx back)")
AFFINE_DW_ONE_STEP = ("dw comes from one time step only: the same w is used at every step, so dw sums over "
                      "the batch AND time, x.reshape(-1, D).T @ dout.reshape(-1, M) (db likewise sums over "
                      "both)")


def _step_forward(x, prev_h, Wx, Wh, b, bias=True, tanh=True):
    a = x @ Wx + prev_h @ Wh + (b if bias else 0)
    return torch.tanh(a) if tanh else a


def _step_backward_model(local=_tanh_grad, wh_t=True):
    """rnn_step_backward with the given local derivative (and dprev_h through Wh.T or Wh)."""
    def model(i):
        x, prev_h, Wx, Wh = i["x"], i["prev_h"], i["Wx"], i["Wh"]
        da = i["dnext_h"] * local(_step_forward(x, prev_h, Wx, Wh, i["b"]))
        if not wh_t:
            return {"dprev_h": da @ Wh}
        return {"dx": da @ Wx.T, "dprev_h": da @ Wh.T, "dWx": x.T @ da, "dWh": prev_h.T @ da, "db": da.sum(0)}
    return model


def _seq_forward(x, h0, Wx, Wh, b, bias=True, start="h0", shifted=False):
    """rnn_forward's states (N, T, H), and the list the backward pass reads."""
    prev = h0 if start == "h0" else torch.zeros_like(h0)
    hs = []
    for t in range(x.shape[1]):
        nxt = _step_forward(x[:, t], prev, Wx, Wh, b, bias)
        hs.append(prev if shifted else nxt)
        prev = nxt
    return torch.stack(hs, dim=1)


def _seq_backward(x, h0, Wx, Wh, b, dh, local=_tanh_grad, wh_t=True, carry=True, accumulate=True,
                  reverse=True):
    """rnn_backward (its own forward included), with switches for the usual mistakes."""
    T = x.shape[1]
    hs = _seq_forward(x, h0, Wx, Wh, b)
    dx = torch.zeros_like(x)
    dWx, dWh, db = torch.zeros_like(Wx), torch.zeros_like(Wh), torch.zeros_like(b)
    dprev = torch.zeros_like(h0)
    for t in (reversed(range(T)) if reverse else range(T)):
        da = (dh[:, t] + dprev if carry else dh[:, t]) * local(hs[:, t])
        dx[:, t] = da @ Wx.T
        step = (x[:, t].T @ da, (hs[:, t - 1] if t else h0).T @ da, da.sum(0))
        dWx, dWh, db = (dWx + step[0], dWh + step[1], db + step[2]) if accumulate else step
        dprev = da @ (Wh.T if wh_t else Wh)
    return {"dx": dx, "dh0": dprev, "dWx": dWx, "dWh": dWh, "db": db}


def _seq_backward_model(keep=None, **kw):
    """rnn_backward with the mistakes kw; keep: the outputs the mistake changes (default: every one)."""
    def model(i):
        out = _seq_backward(*(i[n] for n in SEQ_ARGS), i["dh"], **kw)
        return out if keep is None else {k: out[k] for k in keep}
    return model


def _step_forward_mistakes():
    def model(**kw):
        return lambda i: {"next_h": _step_forward(*(i[n] for n in STEP_ARGS), **kw)}
    return [model_mistake(NO_BIAS, model(bias=False)), model_mistake(NO_TANH, model(tanh=False))]


def _step_backward_mistakes():
    return [model_mistake(hint, _step_backward_model(local)) for hint, local in TANH_MISTAKES] + [
        model_mistake(WH_NOT_TRANSPOSED, _step_backward_model(wh_t=False)),
        Mistake(TRANSPOSED_DW, transposed_weight_grad)]


def _seq_forward_mistakes():
    def model(**kw):
        return lambda i: {"h": _seq_forward(*(i[n] for n in SEQ_ARGS), **kw)}
    return [model_mistake(NO_BIAS, model(bias=False)), model_mistake(H0_IGNORED, model(start="zeros")),
            model_mistake(H_SHIFTED, model(shifted=True))]


def _seq_backward_mistakes():
    return [model_mistake(NO_CARRY, _seq_backward_model(carry=False)),
            model_mistake(OVERWRITTEN, _seq_backward_model(keep=("dWx", "dWh", "db"), accumulate=False)),
            model_mistake(FORWARD_IN_TIME, _seq_backward_model(reverse=False)),
            model_mistake(WH_NOT_TRANSPOSED, _seq_backward_model(wh_t=False))] + [
        model_mistake(hint, _seq_backward_model(local=local)) for hint, local in TANH_MISTAKES]


def _birnn_forward_model(how):
    def model(i):
        h_f = _seq_forward(i["x"], i["h0_f"], i["Wx_f"], i["Wh_f"], i["b_f"])
        x_b = i["x"] if how in ("not_reversed", "not_reversed_flipped") else i["x"].flip(1)
        h_b = _seq_forward(x_b, i["h0_b"], i["Wx_b"], i["Wh_b"], i["b_b"])
        return {"h": torch.cat([h_f, h_b.flip(1) if how == "not_reversed_flipped" else h_b], dim=2)}
    return model


def _birnn_backward_model(flip_dh=True, flip_dx=True):
    def model(i):
        H = i["h0_f"].shape[1]
        x, dh = i["x"], i["dh"]
        f = _seq_backward(x, i["h0_f"], i["Wx_f"], i["Wh_f"], i["b_f"], dh[:, :, :H])
        dh_b = dh[:, :, H:].flip(1) if flip_dh else dh[:, :, H:]
        b = _seq_backward(x.flip(1), i["h0_b"], i["Wx_b"], i["Wh_b"], i["b_b"], dh_b)
        return {"dx": f["dx"] + (b["dx"].flip(1) if flip_dx else b["dx"]), "dh0_b": b["dh0"],
                "dWx_b": b["dWx"], "dWh_b": b["dWh"], "db_b": b["db"]}
    return model


BIRNN_FORWARD_MISTAKES = [model_mistake(BI_NOT_FLIPPED_BACK, _birnn_forward_model("not_flipped_back")),
                          model_mistake(BI_NOT_REVERSED, _birnn_forward_model("not_reversed")),
                          model_mistake(BI_NOT_REVERSED, _birnn_forward_model("not_reversed_flipped"))]
BIRNN_BACKWARD_MISTAKES = [model_mistake(BI_DX_NOT_FLIPPED, _birnn_backward_model(flip_dx=False)),
                           model_mistake(BI_DH_NOT_FLIPPED, _birnn_backward_model(flip_dh=False))]


def _affine_dw_one_step(i):
    return {"dw": i["x"][:, -1].T @ i["dout"][:, -1]}


def _mask_ignored_in_dx(i):
    x, y = i["x"], i["y"]
    N = x.shape[0]
    p = torch.softmax(x, dim=2)
    p.scatter_add_(2, y.unsqueeze(2), -torch.ones_like(p[..., :1]))
    return {"dx": p / N}


# --------------------------------------------------------------------------- registry
STEP_EDGES = step_edges("tanh")
EMBED_SMALL, EMBED_MEDIUM = dict(N=2, T=4, V=5, D=3), dict(N=8, T=10, V=30, D=6)
EMBED_EDGES = [("one word repeated everywhere", dict(N=4, T=6, V=5, D=3), {"one_word": True}),
               ("many repeated words (V=3)", dict(N=5, T=7, V=3, D=4), {}),
               ("most words unused (V=100)", dict(N=2, T=3, V=100, D=4), {}),
               ("T=1, N=1", dict(N=1, T=1, V=4, D=3), {})]
# Sizes of 1 the edges above lack (cases.size_one_cases): V=1, every word the same row of W (dW sums all
# of dout), and D=1, one feature a word.
EMBED_SIZE_ONE = size_one_cases(dict(N=3, T=4, V=5, D=3), ["V", "D"])
AFFINE_SMALL, AFFINE_MEDIUM = dict(N=2, T=3, D=4, M=5), dict(N=7, T=9, D=11, M=13)
AFFINE_EDGES = [("T=1", dict(N=3, T=1, D=4, M=5), {}), ("M=1", dict(N=3, T=4, D=4, M=1), {}),
                ("D=1, N=1", dict(N=1, T=4, D=1, M=3), {})]
LOSS_SMALL, LOSS_MEDIUM = dict(N=3, T=4, V=5), dict(N=8, T=10, V=20)
LOSS_EDGES = [("very large scores (1e3)", dict(N=4, T=5, V=6), {"score_scale": 1e3}),
              ("mask mostly false (one step a row, one empty row)", dict(N=5, T=6, V=7), {"mask": "mostly_false"}),
              ("mask all true", dict(N=3, T=4, V=5), {"mask": "all"}),
              ("N=1, T=1, V=2", dict(N=1, T=1, V=2), {"mask": "all"})]
# V=1 (cases.size_one_cases): a single class, whose softmax is 1 whatever its score: the loss and dx
# are exactly 0 (every usual way of computing them gives exact zeros: exp(0) / exp(0), log(1)), so
# the case checks the shapes a squeeze of the (N, V) or (N, T, V) scores would break.
LOSS_SIZE_ONE = size_one_cases(dict(N=3, T=4, V=5), ["V"])
LOSS_BIG_SCORES = {"score_scale": 60.0}  # scores of 50-100: exp overflows in float32

# The vectorisation check's inputs (speed.py; SEQ_SPEED in cases.py): a batch large enough that a Python
# loop over it takes well over 10x the reference (measured 17x to 80x); T short where the reference needs
# no loop over time (a loop over time is allowed: 2x here).
EMBED_SPEED = dict(N=128, T=4, V=50, D=16)
AFFINE_SPEED = dict(N=128, T=4, D=16, M=16)
LOSS_SPEED = dict(N=128, T=4, V=16)

TIME = {"h": 1, "dx": 1, "out": 1}

FUNCTIONS = [
    GradedFunction(
        name="rnn_step_forward", file=FILE, points=2,
        args=STEP_ARGS, returns=("next_h", CACHE),
        make=make_step, oracle=rnn_step_forward_oracle, mistakes=_step_forward_mistakes(),
        cases=standard_cases(STEP_SMALL, STEP_MEDIUM, STEP_EDGES, saturate=BIG_WEIGHTS)),
    GradedFunction(
        name="rnn_step_backward", file=FILE, points=4, forward="rnn_step_forward",
        args=("dnext_h", CACHE), returns=("dx", "dprev_h", "dWx", "dWh", "db"),
        make=backward_maker(make_step), oracle=rnn_step_backward_oracle,
        cases=standard_cases(STEP_SMALL, STEP_MEDIUM, STEP_EDGES, saturate=BIG_WEIGHTS),
        mistakes=_step_backward_mistakes()),
    GradedFunction(
        name="rnn_forward", file=FILE, points=3,
        args=SEQ_ARGS, returns=("h", CACHE),
        make=make_seq, oracle=rnn_forward_oracle, mistakes=_seq_forward_mistakes(),
        cases=standard_cases(SEQ_SMALL, SEQ_MEDIUM, SEQ_EDGES, saturate=BIG_WEIGHTS) + SEQ_SIZE_ONE,
        time_axis=TIME, speed=SEQ_SPEED),
    GradedFunction(
        name="rnn_backward", file=FILE, points=6, forward="rnn_forward",
        args=("dh", CACHE), returns=("dx", "dh0", "dWx", "dWh", "db"),
        make=backward_maker(make_seq), oracle=rnn_backward_oracle,
        cases=standard_cases(SEQ_SMALL, SEQ_MEDIUM, SEQ_EDGES, saturate=BIG_WEIGHTS) + SEQ_SIZE_ONE,
        time_axis=TIME, speed=SEQ_SPEED,
        mistakes=_seq_backward_mistakes()),
    GradedFunction(
        name="birnn_forward", file=FILE, points=3,
        args=BI_ARGS, returns=("h", CACHE),
        make=make_bi, oracle=birnn_forward_oracle, mistakes=BIRNN_FORWARD_MISTAKES,
        cases=standard_cases(SEQ_SMALL, SEQ_MEDIUM, SEQ_EDGES, saturate=BIG_WEIGHTS) + SEQ_SIZE_ONE,
        time_axis=TIME, speed=SEQ_SPEED),
    GradedFunction(
        name="birnn_backward", file=FILE, points=5, forward="birnn_forward",
        args=("dh", CACHE), returns=("dx", "dh0_f", "dh0_b", "dWx_f", "dWh_f", "db_f", "dWx_b", "dWh_b", "db_b"),
        make=backward_maker(make_bi), oracle=birnn_backward_oracle, mistakes=BIRNN_BACKWARD_MISTAKES,
        cases=standard_cases(SEQ_SMALL, SEQ_MEDIUM, SEQ_EDGES, saturate=BIG_WEIGHTS) + SEQ_SIZE_ONE,
        time_axis=TIME, speed=SEQ_SPEED),
    GradedFunction(
        name="word_embedding_forward", file=FILE, points=1,
        args=("x", "W"), returns=("out", CACHE),
        make=make_embed, oracle=word_embedding_forward_oracle,
        cases=standard_cases(EMBED_SMALL, EMBED_MEDIUM, EMBED_EDGES) + EMBED_SIZE_ONE,
        time_axis=TIME, speed=EMBED_SPEED),
    GradedFunction(
        name="word_embedding_backward", file=FILE, points=2, forward="word_embedding_forward",
        args=("dout", CACHE), returns=("dW",),
        make=backward_maker(make_embed), oracle=word_embedding_backward_oracle,
        cases=standard_cases(EMBED_SMALL, EMBED_MEDIUM, EMBED_EDGES) + EMBED_SIZE_ONE,
        speed=EMBED_SPEED,
        mistakes=[Mistake(
            "dW is right for words that occur once and wrong for words that occur several times: "
            "accumulate them, in one call with no Python loop: dW.index_add_(0, x.reshape(-1), "
            "dout.reshape(-1, D)); dW[x] = dout keeps only one occurrence",
            repeated_words_overwritten)]),
    GradedFunction(
        name="temporal_affine_forward", file=FILE, points=1,
        args=("x", "w", "b"), returns=("out", CACHE),
        make=make_affine, oracle=temporal_affine_forward_oracle,
        cases=standard_cases(AFFINE_SMALL, AFFINE_MEDIUM, AFFINE_EDGES),
        time_axis=TIME, speed=AFFINE_SPEED),
    GradedFunction(
        name="temporal_affine_backward", file=FILE, points=2, forward="temporal_affine_forward",
        args=("dout", CACHE), returns=("dx", "dw", "db"),
        make=backward_maker(make_affine), oracle=temporal_affine_backward_oracle,
        mistakes=[model_mistake(AFFINE_DW_ONE_STEP, _affine_dw_one_step)],
        cases=standard_cases(AFFINE_SMALL, AFFINE_MEDIUM, AFFINE_EDGES),
        time_axis=TIME, speed=AFFINE_SPEED),
    GradedFunction(
        name="temporal_softmax_loss", file=FILE, points=4,
        args=("x", "y", "mask"), returns=("loss", "dx"),
        make=make_loss, oracle=temporal_softmax_loss_oracle,
        cases=standard_cases(LOSS_SMALL, LOSS_MEDIUM, LOSS_EDGES, saturate=LOSS_BIG_SCORES) + LOSS_SIZE_ONE,
        time_axis=TIME, forbidden_ops=forbidden.LAYERS_AND_LOG_SOFTMAX, speed=LOSS_SPEED,
        mistakes=[model_mistake("dx ignores the mask: multiply the gradient by mask too (padded "
                                "steps contribute nothing)", _mask_ignored_in_dx)]),
]
