"""Realistic mistakes in rnn_layers.py (each an edit of the reference solution)."""
from . import Bug

F = "rnn_layers.py"
STEP_BWD = ["rnn_step_backward", "rnn_backward", "birnn_backward"]  # rnn_backward calls the step
SEQ_BWD = ["rnn_backward", "birnn_backward"]  # birnn_backward calls rnn_backward
ALL_RNN = ["rnn_step_forward", "rnn_forward", "birnn_forward"] + STEP_BWD

BATCH_LOOP = Bug(
    "rnn_forward loops over the batch inside the time loop (right values, not vectorised)", F,
    [("        prev_h, step_cache = rnn_step_forward(x[:, t], prev_h, Wx, Wh, b)  # (N, H)\n",
      "        next_h = x.new_empty((N, H))\n"
      "        for n in range(N):  # one example at a time\n"
      "            next_h[n] = torch.tanh(x[n, t] @ Wx + prev_h[n] @ Wh + b)\n"
      "        prev_h, step_cache = next_h, (x[:, t], prev_h, Wx, Wh, next_h)  # (N, H)\n")],
    ["rnn_forward", "birnn_forward"], hint="Loop over time steps only; do the batch (and hidden units) as tensor "
                                          "operations")

BUGS = [
    Bug("wrong tanh derivative (1 - h)", F,
        [("da = dnext_h * (1 - next_h * next_h)", "da = dnext_h * (1 - next_h)")],
        STEP_BWD, hint="1 - next_h"),
    Bug("tanh derivative applied to tanh again", F,
        [("da = dnext_h * (1 - next_h * next_h)", "da = dnext_h * (1 - torch.tanh(next_h) ** 2)")],
        STEP_BWD, hint="1 - tanh(next_h)**2"),
    Bug("transposed dWh", F,
        [("dWh = prev_h.T @ da  # (H, H)", "dWh = (prev_h.T @ da).T  # (H, H)")],
        STEP_BWD, hint="transpose"),
    Bug("dprev_h multiplies by Wh instead of Wh.T", F,
        [("dprev_h = da @ Wh.T  # (N, H)", "dprev_h = da @ Wh  # (N, H)")],
        STEP_BWD),
    Bug("db averaged over the batch", F,
        [("db = da.sum(dim=0)  # (H,)", "db = da.mean(dim=0)  # (H,)")],
        STEP_BWD, hint="1/N"),
    Bug("gradient not carried between time steps", F,
        [("dnext_h = dh[:, t] + dprev_h  # a new tensor: dh itself is left untouched", "dnext_h = dh[:, t]")],
        SEQ_BWD, hint="flows back from step t+1"),
    Bug("backward loop runs forward in time", F,
        [("    for t in reversed(range(T)):\n        dnext_h", "    for t in range(T):\n        dnext_h")],
        SEQ_BWD),
    Bug("in-place edit of dh", F,
        [("dnext_h = dh[:, t] + dprev_h  # a new tensor: dh itself is left untouched",
          "dh[:, t] += dprev_h\n        dnext_h = dh[:, t]")],
        SEQ_BWD, hint="modified its input"),
    Bug("dtype lost by torch.zeros without dtype", F,
        [("dx = dh.new_empty((N, T, D))", "dx = torch.zeros((N, T, D))")],
        SEQ_BWD, hint="dtype"),
    Bug("h0 ignored (starts from zeros)", F,
        [("    prev_h = h0\n", "    prev_h = torch.zeros_like(h0)\n")],
        ["rnn_forward", "birnn_forward", "rnn_backward", "birnn_backward"]),
    Bug("bias left out of the step", F,
        [("next_h = torch.tanh(x @ Wx + prev_h @ Wh + b)", "next_h = torch.tanh(x @ Wx + prev_h @ Wh)")],
        ALL_RNN, hint="is wrong"),
    Bug("BiRNN: backward states not flipped back", F,
        [("h = torch.cat([h_f, h_b_rev.flip(1)], dim=2)", "h = torch.cat([h_f, h_b_rev], dim=2)")],
        ["birnn_forward"]),
    Bug("BiRNN backward: dx of the backward direction not re-flipped", F,
        [("dx = dx_f + dx_b_rev.flip(1)", "dx = dx_f + dx_b_rev")],
        ["birnn_backward"], hint="part of dx is in reversed time"),
    Bug("BiRNN backward: upstream gradient of the backward direction not flipped", F,
        [("rnn_backward(dh[:, :, H:].flip(1), cache_b)", "rnn_backward(dh[:, :, H:], cache_b)")],
        ["birnn_backward"]),
    Bug("embedding gradient assigned instead of accumulated", F,
        [("dW.index_add_(0, x.reshape(-1), dout.reshape(-1, D))", "dW[x.reshape(-1)] = dout.reshape(-1, D)")],
        ["word_embedding_backward"], hint="occur several times"),
    Bug("temporal affine db summed over the batch only", F,
        [("db = dout.sum(dim=(0, 1))", "db = dout.sum(dim=0)")],
        ["temporal_affine_backward"], hint="shape"),
    Bug("temporal affine dw uses the last time step only", F,
        [("dw = x.reshape(-1, D).T @ dout.reshape(-1, M)", "dw = x[:, -1].T @ dout[:, -1]")],
        ["temporal_affine_backward"]),
    Bug("loss averaged over N*T instead of N", F,
        [("loss = -(m * picked).sum() / N", "loss = -(m * picked).sum() / (N * x.shape[1])")],
        ["temporal_softmax_loss"], hint="1/T"),
    Bug("mask ignored in dx", F,
        [("dx = dx * (m / N).unsqueeze(2)", "dx = dx / N")],
        ["temporal_softmax_loss"], hint="ignores the mask"),
    Bug("dx not divided by N", F,
        [("dx = dx * (m / N).unsqueeze(2)", "dx = dx * m.unsqueeze(2)")],
        ["temporal_softmax_loss"], hint="= N"),
    Bug("unstable softmax (exp of raw scores)", F,
        [("log_probs = x - torch.logsumexp(x, dim=2, keepdim=True)",
          "log_probs = torch.log(torch.exp(x) / torch.exp(x).sum(dim=2, keepdim=True))")],
        ["temporal_softmax_loss"], hint="exp overflowed"),
    # Hand-written nonlinearities, as real student code has them: right in float64 at moderate sizes,
    # NaN in float32 once a pre-activation passes 44 (or 89): the saturated float32 cases catch them.
    Bug("hand-written tanh (1 - exp(-2z)) / (1 + exp(-2z))", F,
        [("next_h = torch.tanh(x @ Wx + prev_h @ Wh + b)  # (N, H)",
          "z = x @ Wx + prev_h @ Wh + b\n    next_h = (1 - torch.exp(-2 * z)) / (1 + torch.exp(-2 * z))  # (N, H)")],
        ALL_RNN, hint="exp overflowed"),
    Bug("hand-written tanh (exp(z) - exp(-z)) / (exp(z) + exp(-z))", F,
        [("next_h = torch.tanh(x @ Wx + prev_h @ Wh + b)  # (N, H)",
          "z = x @ Wx + prev_h @ Wh + b\n"
          "    next_h = (torch.exp(z) - torch.exp(-z)) / (torch.exp(z) + torch.exp(-z))  # (N, H)")],
        ALL_RNN, hint="exp overflowed"),
    Bug("softmax without the max subtracted (exp(x) / sum)", F,
        [("dx = torch.exp(log_probs)  # softmax, (N, T, V)",
          "dx = torch.exp(x) / torch.exp(x).sum(dim=2, keepdim=True)  # softmax, (N, T, V)")],
        ["temporal_softmax_loss"], hint="exp overflowed"),
    # Right values, one example at a time: N times slower (46x the reference at the vectorisation check's
    # N=64), which only that check sees; birnn_forward calls rnn_forward and is as slow (tests/test_speed.py).
    BATCH_LOOP,
]
