"""Realistic mistakes in the NumPy track's lstm_layers.py (each an edit of solutions/numpy/lstm_layers.py)."""
from . import Bug

F = "lstm_layers.py"
STEP_BWD = ["lstm_step_backward", "lstm_backward"]  # lstm_backward calls the step
ALL_LSTM = ["lstm_step_forward", "lstm_forward", "lstm_step_backward", "lstm_backward"]

O_GATE = "o = sigmoid(a[:, 2 * H:3 * H])  # (N, H) output gate"
G_GATE = "g = np.tanh(a[:, 3 * H:4 * H])  # (N, H) gate gate (candidate cell values)"
I_GATE = "i = sigmoid(a[:, 0:H])  # (N, H) input gate"
DC = "dc = dnext_c + dnext_h * o * (1 - tanh_c * tanh_c)  # (N, H) total gradient of next_c"
CARRY = "dnext_h = dh[:, t] + dprev_h  # a new array: dh itself is left untouched"
C0 = "prev_c = np.zeros_like(h0)  # (N, H) the initial cell state is zero"
SIGMOID = ("    e = np.exp(-np.abs(x))  # in (0, 1]\n"
           "    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))\n")
NEXT_C = "next_c = f * prev_c + i * g  # (N, H)"

SHARED = [  # the torch track's kinds of mistakes (tests/buggy/), in NumPy
    # ---- the torch corpus's mistakes, in NumPy
    Bug("lstm: torch's gate order (i, f, g, o) instead of the lecture's (i, f, o, g)", F,
        [(O_GATE, "o = sigmoid(a[:, 3 * H:4 * H])"), (G_GATE, "g = np.tanh(a[:, 2 * H:3 * H])")],
        ALL_LSTM, hint="torch.nn.LSTM's order"),
    Bug("lstm: torch's gate order: the sequence forward reports it too", F,
        [(O_GATE, "o = sigmoid(a[:, 3 * H:4 * H])"), (G_GATE, "g = np.tanh(a[:, 2 * H:3 * H])")],
        ["lstm_forward", "lstm_step_forward", "lstm_step_backward", "lstm_backward"], hint="i, f, o, g"),
    Bug("lstm: no tanh on the cell (next_h = o * next_c)", F,
        [("tanh_c = np.tanh(next_c)  # (N, H)", "tanh_c = next_c  # (N, H)")],
        ALL_LSTM, hint="o * tanh(next_c)"),
    Bug("lstm: dnext_c dropped from the cell gradient", F,
        [(DC, "dc = dnext_h * o * (1 - tanh_c * tanh_c)")], STEP_BWD, hint="dnext_c is missing"),
    Bug("lstm: dprev_c without the forget gate", F,
        [("dprev_c = dc * f  # (N, H)", "dprev_c = dc  # (N, H)")], STEP_BWD, hint="forget gate"),
    Bug("lstm: dprev_c without the forget gate: lstm_backward reports it too", F,
        [("dprev_c = dc * f  # (N, H)", "dprev_c = dc  # (N, H)")],
        ["lstm_backward", "lstm_step_backward"], hint="forget gate"),
    Bug("lstm: cell gradient not carried across time", F,
        [("lstm_step_backward(dnext_h, dprev_c, caches[t])",
          "lstm_step_backward(dnext_h, np.zeros_like(dprev_c), caches[t])")],
        ["lstm_backward"], hint="cell-state gradient is not carried"),
    Bug("lstm: hidden gradient not carried across time", F,
        [(CARRY, "dnext_h = dh[:, t]")], ["lstm_backward"], hint="dh[:, t] + dprev_h"),
    Bug("lstm: initial cell state c0 = h0 instead of zeros", F,
        [(C0, "prev_c = h0")], ["lstm_forward", "lstm_backward"], hint="c0 = 0"),
    Bug("lstm: initial cell state c0 = h0: lstm_backward reports it too", F,
        [(C0, "prev_c = h0")], ["lstm_backward", "lstm_forward"], hint="c0 = h0"),
    Bug("lstm: sigmoid gates differentiated like tanh", F,
        [("da = np.concatenate([di * i * (1 - i),", "da = np.concatenate([di * (1 - i * i),"),
         ("df * f * (1 - f),", "df * (1 - f * f),"),
         ("do * o * (1 - o),", "do * (1 - o * o),")],
        STEP_BWD, hint="s * (1 - s)"),
    Bug("lstm: output-gate gradient uses the cell gradient instead of dnext_h", F,
        [("do = dnext_h * tanh_c  # (N, H)", "do = dc * tanh_c  # (N, H)")], STEP_BWD, hint="use dnext_h there"),
    Bug("lstm: db averaged over the batch", F,
        [("db = da.sum(axis=0)  # (4H,)", "db = da.mean(axis=0)  # (4H,)")], STEP_BWD, hint="1/N"),
    Bug("lstm: weight gradients overwritten at every step", F,
        [("dWx = dWx + dWx_t", "dWx = dWx_t"), ("dWh = dWh + dWh_t", "dWh = dWh_t"), ("db = db + db_t", "db = db_t")],
        ["lstm_backward"], hint="added up over the time steps"),
    Bug("lstm: in-place edit of dh", F,
        [(CARRY, "dh[:, t] += dprev_h\n        dnext_h = dh[:, t]")], ["lstm_backward"], hint="modified its input"),
    Bug("lstm: dnext_c += ... edits the caller's gradient in place (the most common real mistake)", F,
        [(DC, "dnext_c += dnext_h * o * (1 - tanh_c * tanh_c)\n    dc = dnext_c  # (N, H) total gradient of next_c")],
        ["lstm_step_backward"], hint="For dnext_c, write `dc = dnext_c + ...` (a new array) instead of `dnext_c += ...`"),
    Bug("lstm: forward stores the cell state as the output", F,
        [("        h[:, t] = prev_h\n", "        h[:, t] = prev_c\n")], ["lstm_forward"], hint="h holds the cell states"),
    # Hand-written sigmoids: exp(z) / (1 + exp(z)) is NaN in float32 once z passes 89 (inf / inf);
    # 1 / (1 + exp(-z)) is right everywhere (exp(-z) = inf gives exactly 0, with an overflow RuntimeWarning
    # that costs nothing) and keeps full marks, as does np.where over two branches of which one overflows.
    Bug("lstm: hand-written sigmoid exp(z) / (1 + exp(z))", F,
        [(I_GATE, "i = np.exp(a[:, 0:H]) / (1 + np.exp(a[:, 0:H]))  # (N, H) input gate")],
        ALL_LSTM, hint="exp overflowed"),
    Bug("lstm: the sigmoid helper rewritten as exp(x) / (1 + exp(x))", F,
        [(SIGMOID, "    return np.exp(x) / (1 + np.exp(x))\n")], ALL_LSTM, hint="exp overflowed"),
    Bug("lstm: hand-written sigmoid 1 / (1 + exp(-z)) (correct: passes)", F,
        [(SIGMOID, "    return 1 / (1 + np.exp(-x))\n")], []),
    Bug("lstm: sigmoid by np.where over two branches, one overflowing (correct: passes)", F,
        [(SIGMOID, "    return np.where(x >= 0, 1 / (1 + np.exp(-x)), np.exp(x) / (1 + np.exp(x)))\n")], []),
    Bug("lstm: hand-written tanh of the cell (exp(2c) - 1) / (exp(2c) + 1)", F,
        [(G_GATE, "g = (np.exp(2 * a[:, 3 * H:4 * H]) - 1) / (np.exp(2 * a[:, 3 * H:4 * H]) + 1)")],
        ALL_LSTM, hint="exp overflowed"),
]

NUMPY_OWN = [  # NumPy's own mistakes
    Bug("lstm: np.zeros without dtype: dx of lstm_backward is float64", F,
        [("dx = np.empty((N, T, D), dtype=dh.dtype)", "dx = np.zeros((N, T, D))")],
        ["lstm_backward"], hint="dtype=x.dtype"),
    Bug("lstm: np.empty without dtype: h of lstm_forward is float64", F,
        [("h = np.empty((N, T, H), dtype=x.dtype)  # input's dtype", "h = np.empty((N, T, H))")],
        ["lstm_forward"], hint="np.zeros_like"),
    Bug("lstm: c0 = np.zeros(h0.shape) (float64: the backward's gradients become float64)", F,
        [(C0, "prev_c = np.zeros(h0.shape)")], ["lstm_backward"], hint="dtype"),
    Bug("lstm: np.zeros without dtype for the carried gradients", F,
        [("dprev_h = np.zeros((N, H), dtype=dh.dtype)", "dprev_h = np.zeros((N, H))"),
         ("dprev_c = np.zeros((N, H), dtype=dh.dtype)", "dprev_c = np.zeros((N, H))")],
        ["lstm_backward"], hint="dtype"),
    Bug("lstm: next_c built in place in prev_c (prev_c *= f)", F,
        [(NEXT_C, "prev_c *= f\n    prev_c += i * g\n    next_c = prev_c  # (N, H)")],
        ["lstm_step_forward", "lstm_step_backward", "lstm_backward"], hint="modified its input"),
    Bug("lstm: dprev_c squeezed (N=1 or H=1 loses an axis)", F,
        [("dprev_c = dc * f  # (N, H)", "dprev_c = np.squeeze(dc * f)  # (N, H)")],
        STEP_BWD, hint="a dimension of size 1 went missing"),
    Bug("lstm: np.dot for the output h = o . tanh(c)", F,
        [("next_h = o * tanh_c  # (N, H)", "next_h = np.dot(o, tanh_c.T)  # (N, H)")],
        ["lstm_step_forward", "lstm_forward", "lstm_backward"], hint="has shape"),  # the step's backward reads no next_h
    Bug("lstm: db summed over axis=1", F,
        [("db = da.sum(axis=0)  # (4H,)", "db = da.sum(axis=1)  # (4H,)")], STEP_BWD, hint="shape"),
    Bug("lstm: dWh with prev_h.reshape(H, N) instead of prev_h.T", F,
        [("dWh = prev_h.T @ da  # (H, 4H)", "dWh = prev_h.reshape(prev_h.shape[1], -1) @ da  # (H, 4H)")], STEP_BWD),
]

BUGS = SHARED + NUMPY_OWN
