"""Realistic mistakes in the NumPy track's rnn_layers.py (each an edit of solutions/numpy/rnn_layers.py)."""
from . import Bug

F = "rnn_layers.py"
STEP_BWD = ["rnn_step_backward", "rnn_backward", "birnn_backward"]  # rnn_backward calls the step
SEQ_BWD = ["rnn_backward", "birnn_backward"]  # birnn_backward calls rnn_backward
SEQ_FWD = ["rnn_forward", "birnn_forward"]  # birnn_forward calls rnn_forward
ALL_RNN = ["rnn_step_forward", "rnn_forward", "birnn_forward"] + STEP_BWD

STEP = "next_h = np.tanh(x @ Wx + prev_h @ Wh + b)  # (N, H)"
TANH_GRAD = "da = dnext_h * (1 - next_h * next_h)  # (N, H) gradient through tanh"
CARRY = "dnext_h = dh[:, t] + dprev_h  # a new array: dh itself is left untouched"
LSE = "lse = x_max + np.log(np.exp(x - x_max).sum(axis=2, keepdims=True))  # (N, T, 1), stable"
LOSS_DX = "dx = dx * (m / N)[:, :, None]"

BATCH_LOOP = Bug(
    "rnn_forward loops over the batch inside the time loop (right values, not vectorised)", F,
    [("        prev_h, step_cache = rnn_step_forward(x[:, t], prev_h, Wx, Wh, b)  # (N, H)\n",
      "        next_h = np.empty((N, H), dtype=x.dtype)\n"
      "        for n in range(N):  # one example at a time\n"
      "            next_h[n] = np.tanh(x[n, t] @ Wx + prev_h[n] @ Wh + b)\n"
      "        prev_h, step_cache = next_h, (x[:, t], prev_h, Wx, Wh, next_h)  # (N, H)\n")],
    SEQ_FWD, hint="Loop over time steps only")

SHARED = [  # the torch track's kinds of mistakes (tests/buggy/), in NumPy
    # ---- the torch corpus's mistakes, in NumPy
    Bug("wrong tanh derivative (1 - h)", F, [(TANH_GRAD, "da = dnext_h * (1 - next_h)")], STEP_BWD, hint="1 - next_h"),
    Bug("tanh derivative applied to tanh again", F, [(TANH_GRAD, "da = dnext_h * (1 - np.tanh(next_h) ** 2)")],
        STEP_BWD, hint="1 - tanh(next_h)**2"),
    Bug("tanh derivative skipped (da = dnext_h)", F, [(TANH_GRAD, "da = dnext_h")], STEP_BWD,
        hint="the gradient skipped the tanh"),
    Bug("transposed dWh", F, [("dWh = prev_h.T @ da  # (H, H)", "dWh = (prev_h.T @ da).T  # (H, H)")],
        STEP_BWD, hint="transpose"),
    Bug("dprev_h multiplies by Wh instead of Wh.T", F, [("dprev_h = da @ Wh.T  # (N, H)", "dprev_h = da @ Wh  # (N, H)")],
        STEP_BWD, hint="it must be Wh.T"),
    Bug("db averaged over the batch", F, [("db = da.sum(axis=0)  # (H,)", "db = da.mean(axis=0)  # (H,)")],
        STEP_BWD, hint="1/N"),
    Bug("gradient not carried between time steps", F, [(CARRY, "dnext_h = dh[:, t]")],
        SEQ_BWD, hint="flows back from step t+1"),
    Bug("backward loop runs forward in time", F,
        [("    for t in reversed(range(T)):\n        dnext_h", "    for t in range(T):\n        dnext_h")],
        SEQ_BWD, hint="runs forward in time"),
    Bug("weight gradients overwritten at every step", F,
        [("dWx = dWx + dWx_t", "dWx = dWx_t"), ("dWh = dWh + dWh_t", "dWh = dWh_t"), ("db = db + db_t", "db = db_t")],
        SEQ_BWD, hint="added up over the time steps"),
    Bug("in-place edit of dh (dh[:, t] += dprev_h)", F, [(CARRY, "dh[:, t] += dprev_h\n        dnext_h = dh[:, t]")],
        SEQ_BWD, hint="modified its input"),
    Bug("h0 ignored (starts from zeros)", F, [("    prev_h = h0\n", "    prev_h = np.zeros_like(h0)\n")],
        ["rnn_forward", "birnn_forward", "rnn_backward", "birnn_backward"], hint="begin the loop with prev_h = h0"),
    Bug("bias left out of the step", F, [(STEP, "next_h = np.tanh(x @ Wx + prev_h @ Wh)  # (N, H)")],
        ALL_RNN, hint="without the bias"),
    Bug("tanh left out of the step", F, [(STEP, "next_h = x @ Wx + prev_h @ Wh + b  # (N, H)")],
        ALL_RNN, hint="looks like the pre-activation"),
    Bug("BiRNN: backward states not flipped back", F,
        [("h = np.concatenate([h_f, np.flip(h_b_rev, axis=1)], axis=2)", "h = np.concatenate([h_f, h_b_rev], axis=2)")],
        ["birnn_forward"], hint="in reversed time"),
    Bug("BiRNN: backward RNN not run on reversed time", F,
        [("x_rev = np.flip(x, axis=1)  # (N, T, D), reversed time", "x_rev = x")],
        ["birnn_forward", "birnn_backward"], hint="reads x in the same order"),
    Bug("BiRNN backward: dx of the backward direction not re-flipped", F,
        [("dx = dx_f + np.flip(dx_b_rev, axis=1)", "dx = dx_f + dx_b_rev")],
        ["birnn_backward"], hint="part of dx is in reversed time"),
    Bug("BiRNN backward: upstream gradient of the backward direction not flipped", F,
        [("rnn_backward(np.flip(dh[:, :, H:], axis=1), cache_b)", "rnn_backward(dh[:, :, H:], cache_b)")],
        ["birnn_backward"], hint="wrong time order"),
    Bug("embedding gradient assigned instead of accumulated", F,
        [("np.add.at(dW, x.reshape(-1), dout.reshape(-1, D))", "dW[x.reshape(-1)] = dout.reshape(-1, D)")],
        ["word_embedding_backward"], hint="occur several times"),
    Bug("temporal affine db summed over the batch only", F,
        [("db = dout.sum(axis=(0, 1))", "db = dout.sum(axis=0)")], ["temporal_affine_backward"], hint="shape"),
    Bug("temporal affine dw uses the last time step only", F,
        [("dw = x.reshape(-1, D).T @ dout.reshape(-1, M)", "dw = x[:, -1].T @ dout[:, -1]")],
        ["temporal_affine_backward"], hint="one time step only"),
    Bug("loss averaged over N*T instead of N", F,
        [("loss = x.dtype.type(-(m * picked).sum() / N)", "loss = x.dtype.type(-(m * picked).sum() / (N * T))")],
        ["temporal_softmax_loss"], hint="1/T"),
    Bug("mask ignored in dx", F, [(LOSS_DX, "dx = dx / N")], ["temporal_softmax_loss"], hint="ignores the mask"),
    Bug("dx not divided by N", F, [(LOSS_DX, "dx = dx * m[:, :, None]")], ["temporal_softmax_loss"], hint="= N"),
    Bug("unstable softmax (exp of raw scores)", F,
        [(LSE, "lse = np.log(np.exp(x).sum(axis=2, keepdims=True))  # (N, T, 1)")],
        ["temporal_softmax_loss"], hint="exp overflowed"),
    Bug("softmax without the max subtracted (exp(x) / sum)", F,
        [("dx = np.exp(log_probs)  # softmax, (N, T, V)",
          "dx = np.exp(x) / np.exp(x).sum(axis=2, keepdims=True)  # softmax, (N, T, V)")],
        ["temporal_softmax_loss"], hint="exp overflowed"),
    # Hand-written tanh: right in float64 at moderate sizes; in float32 np.exp overflows (inf) once a
    # pre-activation passes 89 (44 for exp(2z)) and inf / inf is NaN: the saturated float32 cases catch it.
    Bug("hand-written tanh (1 - exp(-2z)) / (1 + exp(-2z))", F,
        [(STEP, "z = x @ Wx + prev_h @ Wh + b\n    next_h = (1 - np.exp(-2 * z)) / (1 + np.exp(-2 * z))  # (N, H)")],
        ALL_RNN, hint="exp overflowed"),
    Bug("hand-written tanh (exp(z) - exp(-z)) / (exp(z) + exp(-z))", F,
        [(STEP, "z = x @ Wx + prev_h @ Wh + b\n"
                "    next_h = (np.exp(z) - np.exp(-z)) / (np.exp(z) + np.exp(-z))  # (N, H)")],
        ALL_RNN, hint="exp overflowed"),
    BATCH_LOOP,
]

NUMPY_OWN = [  # NumPy's own mistakes
    Bug("np.zeros without dtype: dx of rnn_backward is float64", F,
        [("dx = np.empty((N, T, D), dtype=dh.dtype)", "dx = np.zeros((N, T, D))")],
        SEQ_BWD, hint="dtype=x.dtype"),
    Bug("np.zeros without dtype: the weight gradients of rnn_backward are float64", F,
        [("dWx = np.zeros((D, H), dtype=dh.dtype)", "dWx = np.zeros((D, H))"),
         ("dWh = np.zeros((H, H), dtype=dh.dtype)", "dWh = np.zeros((H, H))"),
         ("db = np.zeros((H,), dtype=dh.dtype)", "db = np.zeros((H,))")],
        SEQ_BWD, hint="np.zeros_like"),
    Bug("np.empty without dtype: h of rnn_forward is float64", F,
        [("h = np.empty((N, T, H), dtype=x.dtype)  # input's dtype", "h = np.empty((N, T, H))")],
        SEQ_FWD, hint="dtype=x.dtype"),
    Bug("np.zeros without dtype: dW of the embedding is float64", F,
        [("dW = np.zeros((V, D), dtype=dout.dtype)", "dW = np.zeros((V, D))")],
        ["word_embedding_backward"], hint="np.zeros_like"),
    Bug("mask.astype(float): float64 dx from a float32 loss", F,
        [("m = mask.astype(x.dtype)  # (N, T)", "m = mask.astype(float)  # (N, T)")],
        ["temporal_softmax_loss"], hint="dtype"),
    Bug("np.float64 scalar upcasts dx (dx * np.float64(1 / N))", F,
        [(LOSS_DX, "dx = dx * m[:, :, None] * np.float64(1 / N)")],
        ["temporal_softmax_loss"], hint="dtype"),
    Bug("dnext_h *= ... edits the caller's gradient in place", F,
        [(TANH_GRAD, "dnext_h *= 1 - next_h * next_h\n    da = dnext_h")],
        ["rnn_step_backward"], hint="modified its input"),
    Bug("embedding gradient with dW[x] += dout (buffered: repeated words counted once)", F,
        [("np.add.at(dW, x.reshape(-1), dout.reshape(-1, D))", "dW[x.reshape(-1)] += dout.reshape(-1, D)")],
        ["word_embedding_backward"], hint="occur several times"),
    Bug("db squeezed (H=1 loses its only axis)", F,
        [("db = da.sum(axis=0)  # (H,)", "db = np.squeeze(da.sum(axis=0, keepdims=True))  # (H,)")],
        ["rnn_step_backward"], hint="a dimension of size 1 went missing"),
    Bug("rnn_forward returns np.squeeze(h) (N=1 or H=1 loses an axis)", F,
        [("    cache = caches\n    # END SOLUTION\n    return h, cache",
          "    cache = caches\n    h = np.squeeze(h)\n    # END SOLUTION\n    return h, cache")],
        ["rnn_forward", "birnn_forward", "birnn_backward"], hint="a dimension of size 1 went missing"),
    Bug("np.dot instead of * for the tanh derivative", F,
        [(TANH_GRAD, "da = np.dot(dnext_h, (1 - next_h * next_h).T)")],
        STEP_BWD, hint="raised"),
    Bug("dx with Wx.reshape(H, D) instead of Wx.T", F,
        [("dx = da @ Wx.T  # (N, D)", "dx = da @ Wx.reshape(Wx.shape[1], Wx.shape[0])  # (N, D)")],
        STEP_BWD),
    Bug("db summed over axis=1 instead of axis=0", F,
        [("db = da.sum(axis=0)  # (H,)", "db = da.sum(axis=1)  # (H,)")],
        STEP_BWD, hint="shape"),
    Bug("loss: max without keepdims (shapes do not broadcast)", F,
        [("x_max = x.max(axis=2, keepdims=True)  # (N, T, 1)", "x_max = x.max(axis=2)  # (N, T)")],
        ["temporal_softmax_loss"], hint="broadcast"),
    Bug("temporal affine dw with x.reshape(D, -1) instead of a transpose", F,
        [("dw = x.reshape(-1, D).T @ dout.reshape(-1, M)", "dw = x.reshape(D, -1) @ dout.reshape(-1, M)")],
        ["temporal_affine_backward"]),
]

BUGS = SHARED + NUMPY_OWN
