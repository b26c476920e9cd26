"""lstm_layers.py: one LSTM step and a whole LSTM sequence, forward and backward.

For each graded function: its input maker, its torch oracle (torch.nn.LSTMCell / torch.nn.LSTM
with the gate permutation i,f,o,g <-> i,f,g,o and bias_hh = 0; every gradient from autograd),
its cases and the known mistakes that earn a hint. The FUNCTIONS list at the bottom is this
file's registry.
"""
import torch
from torch.func import functional_call

from ..engine.spec import CACHE, GradedFunction
from .cases import (BIG_WEIGHTS, SEQ_EDGES, SEQ_MEDIUM, SEQ_SIZE_ONE, SEQ_SMALL, SEQ_SPEED, STEP_MEDIUM, STEP_SMALL,
                    standard_cases, step_edges)
from .common import F64, backward_maker, layer_oracles, model_mistake, randn, saturate, saturate_bias

FILE = "lstm_layers"


# --------------------------------------------------------------------------- oracles
def _perm(H, device):
    """Column order that turns our gate blocks (i, f, o, g) into torch's (i, f, g, o)."""
    blocks = [0, 1, 3, 2]  # torch block j is our block blocks[j]
    return torch.cat([torch.arange(j * H, (j + 1) * H, device=device) for j in blocks])


def _torch_params(Wx, Wh, b, suffix=""):
    H = Wh.shape[0]
    p = _perm(H, Wx.device)
    return {"weight_ih" + suffix: Wx[:, p].T, "weight_hh" + suffix: Wh[:, p].T, "bias_ih" + suffix: b[p],
            "bias_hh" + suffix: torch.zeros_like(b)}


def _torch_lstm_step(i):
    """torch.nn.LSTMCell with our weights: (next_h, next_c)."""
    D, H4 = i["Wx"].shape
    cell = torch.nn.LSTMCell(D, H4 // 4, dtype=F64, device=i["x"].device)
    return functional_call(cell, _torch_params(i["Wx"], i["Wh"], i["b"]), (i["x"], (i["prev_h"], i["prev_c"])))


def _torch_lstm(x, h0, Wx, Wh, b):
    """torch.nn.LSTM with our weights, initial cell state zero: h (N, T, H)."""
    D, H4 = Wx.shape
    module = torch.nn.LSTM(D, H4 // 4, batch_first=True, dtype=F64, device=x.device)
    state = (h0.unsqueeze(0), torch.zeros_like(h0).unsqueeze(0))  # (1, N, H) each
    with torch.backends.cudnn.flags(enabled=False):
        h, _ = functional_call(module, _torch_params(Wx, Wh, b, "_l0"), (x, state))
    return h


STEP_ARGS = ("x", "prev_h", "prev_c", "Wx", "Wh", "b")
SEQ_ARGS = ("x", "h0", "Wx", "Wh", "b")


lstm_step_forward_oracle, lstm_step_backward_oracle = layer_oracles(
    _torch_lstm_step, ("next_h", "next_c"), STEP_ARGS, ("dnext_h", "dnext_c"))
lstm_forward_oracle, lstm_backward_oracle = layer_oracles(
    lambda i: _torch_lstm(*(i[n] for n in SEQ_ARGS)), ("h",), SEQ_ARGS, ("dh",))


# --------------------------------------------------------------------------- input makers
def make_step(g, case, backward=False):
    N, D, H = (case.sizes[k] for k in "NDH")
    scale = case.opt("weight_scale", 1.0)
    i = {"x": randn(g, N, D), "prev_h": randn(g, N, H), "prev_c": randn(g, N, H),
         "Wx": saturate(randn(g, D, 4 * H, scale=scale / D ** 0.5), case),
         "Wh": saturate(randn(g, H, 4 * H, scale=scale / H ** 0.5), case),
         "b": saturate_bias(randn(g, 4 * H, scale=0.5), case)}
    if backward:
        i["dnext_h"] = randn(g, N, H)
        i["dnext_c"] = randn(g, N, H)
    return i


def make_seq(g, case, backward=False):
    N, T, D, H = (case.sizes[k] for k in "NTDH")
    i = {"x": randn(g, N, T, D), "h0": randn(g, N, H),
         "Wx": saturate(randn(g, D, 4 * H, scale=1 / D ** 0.5), case),
         "Wh": saturate(randn(g, H, 4 * H, scale=1 / H ** 0.5), case),
         "b": saturate_bias(randn(g, 4 * H, scale=0.5), case)}
    if backward:
        i["dh"] = randn(g, N, T, H)
    return i



# --------------------------------------------------------------------------- mistake models
# A plain-torch model of the LSTM with switches for the known mistakes (trusted side only).
TORCH_ORDER = "the gates are read in torch.nn.LSTM's order (i, f, g, o); this assignment stacks them " \
              "in the lecture's order i, f, o, g along the 4H axis: i = sigmoid(a[:, :H]), " \
              "f = sigmoid(a[:, H:2H]), o = sigmoid(a[:, 2H:3H]), g = tanh(a[:, 3H:])"
NO_TANH = "next_h looks like o * next_c: the cell state goes through tanh first, next_h = o * tanh(next_c) " \
          "(and the backward pass then needs tanh's derivative 1 - tanh(next_c)**2)"
C0_H0 = "the initial cell state must be zeros (c0 = 0, it is not an input); this looks like the LSTM " \
        "started with c0 = h0"
NO_DNEXT_C = "the incoming cell gradient dnext_c is missing: the total gradient of next_c is " \
             "dnext_c + dnext_h * o * (1 - tanh(next_c)**2), and every gate gradient uses that total"
NO_FORGET = "dprev_c is missing the forget gate: next_c = f * prev_c + i * g, so dprev_c = " \
            "(total gradient of next_c) * f"
NO_CELL_CARRY = "the cell-state gradient is not carried back through time: pass the dprev_c that step t " \
                "returns as dnext_c of step t-1 (it starts as zeros at t = T-1), just like dprev_h"
NO_H_CARRY = "the hidden-state gradient that flows back from step t+1 into h[:, t] is not added: at each " \
             "step use dh[:, t] + dprev_h"
SIGMOID_AS_TANH = "the gates i, f, o are sigmoids: their derivative is s * (1 - s), not 1 - s**2 (only g " \
                  "uses tanh's derivative)"
DO_FROM_DC = "the output gate's gradient is dnext_h * tanh(next_c): o reaches the loss only through " \
             "next_h = o * tanh(next_c), so use dnext_h there, not the total gradient of next_c"
H_IS_C = "h holds the cell states: h[:, t] must be the hidden state next_h = o * tanh(next_c) of step t " \
         "(the cell state stays inside the layer)"
OVERWRITTEN = "a weight gradient holds only the last step the loop reached (t = 0): dWx, dWh and db must be " \
              "added up over the time steps (the same weights are used at every step), dWx = dWx + dWx_t, " \
              "not overwritten at every step (dWx = dWx_t)"


def _step(x, prev_h, prev_c, Wx, Wh, b, order="ifog", tanh_cell=True):
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    blocks = {name: a[:, j * H:(j + 1) * H] for j, name in enumerate(order)}
    i, f, o, g = (torch.sigmoid(blocks["i"]), torch.sigmoid(blocks["f"]), torch.sigmoid(blocks["o"]),
                  torch.tanh(blocks["g"]))
    c = f * prev_c + i * g
    tc = torch.tanh(c) if tanh_cell else c
    return o * tc, c, (x, prev_h, prev_c, i, f, o, g, torch.tanh(c))


def _step_back(dnext_h, dnext_c, st, Wx, Wh, use_dnext_c=True, forget=True, sigmoid_grad=True, do_from_dc=False):
    x, prev_h, prev_c, i, f, o, g, tc = st
    dc = dnext_h * o * (1 - tc * tc) + (dnext_c if use_dnext_c else 0)
    sg = (lambda s: s * (1 - s)) if sigmoid_grad else (lambda s: 1 - s * s)
    do = (dc if do_from_dc else dnext_h) * tc
    da = torch.cat([dc * g * sg(i), dc * prev_c * sg(f), do * sg(o), dc * i * (1 - g * g)], dim=1)
    return da @ Wx.T, da @ Wh.T, dc * f if forget else dc, x.T @ da, prev_h.T @ da, da.sum(0)


def _step_forward_model(**kw):
    def model(i):
        next_h, next_c, _ = _step(*(i[n] for n in STEP_ARGS), **kw)
        return {"next_h": next_h, "next_c": next_c}
    return model


def _step_backward_model(**kw):
    def model(i):
        _, _, st = _step(*(i[n] for n in STEP_ARGS))
        out = _step_back(i["dnext_h"], i["dnext_c"], st, i["Wx"], i["Wh"], **kw)
        return dict(zip(("dx", "dprev_h", "dprev_c", "dWx", "dWh", "db"), out))
    return model


def _seq_model(order="ifog", tanh_cell=True, c0="zero", back=None, store="h"):
    """lstm_forward (and, with back=dict of switches, lstm_backward) with the given mistakes."""
    back_kw = dict(back or {})
    carry_c = back_kw.pop("carry_c", True)
    carry_h = back_kw.pop("carry_h", True)
    accumulate = back_kw.pop("accumulate", True)

    def model(i):
        x, h0, Wx, Wh, b = (i[n] for n in SEQ_ARGS)
        N, T, _ = x.shape
        prev_h, prev_c = h0, (torch.zeros_like(h0) if c0 == "zero" else h0)
        hs, states = [], []
        for t in range(T):
            prev_h, prev_c, st = _step(x[:, t], prev_h, prev_c, Wx, Wh, b, order, tanh_cell)
            hs.append(prev_h if store == "h" else prev_c)
            states.append(st)
        out = {"h": torch.stack(hs, dim=1)}
        if back is None:
            return out
        dh = i["dh"]
        dx = torch.zeros_like(x)
        dWx, dWh, db = torch.zeros_like(Wx), torch.zeros_like(Wh), torch.zeros_like(b)
        dprev_h, dprev_c = torch.zeros_like(h0), torch.zeros_like(h0)
        for t in reversed(range(T)):
            dnext_h = dh[:, t] + (dprev_h if carry_h else 0)
            dnext_c = dprev_c if carry_c else torch.zeros_like(dprev_c)
            dx[:, t], dprev_h, dprev_c, dWx_t, dWh_t, db_t = _step_back(dnext_h, dnext_c, states[t], Wx, Wh,
                                                                        **back_kw)
            dWx, dWh, db = (dWx + dWx_t, dWh + dWh_t, db + db_t) if accumulate else (dWx_t, dWh_t, db_t)
        out.update({"dx": dx, "dh0": dprev_h, "dWx": dWx, "dWh": dWh, "db": db})
        return out
    return model


def _forward_mistakes(model):
    return [model_mistake(TORCH_ORDER, model(order="ifgo")),
            model_mistake(NO_TANH, model(tanh_cell=False))]


STEP_BACKWARD_MISTAKES = [
    model_mistake(NO_DNEXT_C, _step_backward_model(use_dnext_c=False)),
    model_mistake(NO_FORGET, _step_backward_model(forget=False)),
    model_mistake(SIGMOID_AS_TANH, _step_backward_model(sigmoid_grad=False)),
    model_mistake(DO_FROM_DC, _step_backward_model(do_from_dc=True)),
]
SEQ_BACKWARD_MISTAKES = [
    model_mistake(NO_CELL_CARRY, _seq_model(back={"carry_c": False})),
    model_mistake(NO_H_CARRY, _seq_model(back={"carry_h": False})),
    model_mistake(NO_FORGET, _seq_model(back={"forget": False})),
    model_mistake(SIGMOID_AS_TANH, _seq_model(back={"sigmoid_grad": False})),
    model_mistake(C0_H0, _seq_model(c0="h0", back={})),
    model_mistake(DO_FROM_DC, _seq_model(back={"do_from_dc": True})),
    model_mistake(OVERWRITTEN, _seq_model(back={"accumulate": False})),
]


# --------------------------------------------------------------------------- registry
# The vanilla RNN's sizes and edge cases (cases.py): both layers are checked on the same shapes.
STEP_EDGES = step_edges("gates")
TIME = {"h": 1, "dx": 1}

FUNCTIONS = [
    GradedFunction(
        name="lstm_step_forward", file=FILE, points=2,
        args=STEP_ARGS, returns=("next_h", "next_c", CACHE),
        make=make_step, oracle=lstm_step_forward_oracle,
        cases=standard_cases(STEP_SMALL, STEP_MEDIUM, STEP_EDGES, saturate=BIG_WEIGHTS),
        mistakes=_forward_mistakes(_step_forward_model)),
    GradedFunction(
        name="lstm_step_backward", file=FILE, points=5, forward="lstm_step_forward",
        args=("dnext_h", "dnext_c", CACHE), returns=("dx", "dprev_h", "dprev_c", "dWx", "dWh", "db"),
        make=backward_maker(make_step), oracle=lstm_step_backward_oracle,
        cases=standard_cases(STEP_SMALL, STEP_MEDIUM, STEP_EDGES, saturate=BIG_WEIGHTS),
        mistakes=STEP_BACKWARD_MISTAKES),
    GradedFunction(
        name="lstm_forward", file=FILE, points=3,
        args=SEQ_ARGS, returns=("h", CACHE),
        make=make_seq, oracle=lstm_forward_oracle,
        cases=standard_cases(SEQ_SMALL, SEQ_MEDIUM, SEQ_EDGES, saturate=BIG_WEIGHTS) + SEQ_SIZE_ONE,
        time_axis=TIME, speed=SEQ_SPEED,
        mistakes=_forward_mistakes(_seq_model) + [model_mistake(C0_H0, _seq_model(c0="h0")),
                                                  model_mistake(H_IS_C, _seq_model(store="c"))]),
    GradedFunction(
        name="lstm_backward", file=FILE, points=6, forward="lstm_forward",
        args=("dh", CACHE), returns=("dx", "dh0", "dWx", "dWh", "db"),
        make=backward_maker(make_seq), oracle=lstm_backward_oracle,
        cases=standard_cases(SEQ_SMALL, SEQ_MEDIUM, SEQ_EDGES, saturate=BIG_WEIGHTS) + SEQ_SIZE_ONE,
        time_axis=TIME, speed=SEQ_SPEED,
        mistakes=SEQ_BACKWARD_MISTAKES),
]
