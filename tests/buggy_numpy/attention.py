"""Realistic mistakes in the NumPy track's attention.py (each an edit of solutions/numpy/attention.py)."""
from . import Bug

F = "attention.py"
DOT = ["dot_attention_forward", "dot_attention_backward"]  # the backward runs on the forward's cache
ADD = ["additive_attention_forward", "additive_attention_backward"]
HARD = ["hard_attention_forward", "hard_attention_backward"]
MHA = ["multihead_attention_forward", "multihead_attention_backward"]

DOT_SCORES = "scores = (K @ q[:, :, None]).squeeze(2) / math.sqrt(Dk)  # (N, L)"
DOT_MASK = ("    if mask is not None:\n"
            "        scores = np.where(mask, scores, -np.inf)  # a new array: exp(-inf) = 0\n")
DOT_SOFTMAX = ("    shift = scores.max(axis=1, keepdims=True)  # (N, 1), the row max: finite for a valid mask\n"
               "    shift = np.where(np.isfinite(shift), shift, np.nan)  # no allowed position: NaN row, no warning\n"
               "    exp_scores = np.exp(scores - shift)  # (N, L), at most 1: no overflow\n"
               "    weights = exp_scores / exp_scores.sum(axis=1, keepdims=True)  # (N, L), softmax\n")
DOT_WEIGHTS = "weights = exp_scores / exp_scores.sum(axis=1, keepdims=True)  # (N, L), softmax"
DOT_CONTEXT = DOT_WEIGHTS + "\n    context = (weights[:, None, :] @ V).squeeze(1)  # (N, Dv)"
DOT_SOFTMAX_BWD = ("dscores = weights * (dweights - (weights * dweights).sum(axis=1, keepdims=True))"
                   "  # (N, L), softmax grad")
DOT_DV = "Dk = q.shape[1]\n    dV = weights[:, :, None] * dcontext[:, None, :]  # (N, L, Dv)"  # the backward's
ADD_SOFTMAX_BWD = ("dscores = weights * (dweights - (weights * dweights).sum(axis=1, keepdims=True))"
                   "  # (N, L), via softmax")
ADD_MASK = ("    if mask is not None:\n"
            "        scores = np.where(mask, scores, -np.inf)  # masked positions get weight 0\n")
ADD_EXP = "exp_scores = np.exp(scores - shift)  # (N, L)\n"
ADD_WEIGHTS = "weights = exp_scores / exp_scores.sum(axis=1, keepdims=True)  # (N, L), over the L positions"
LOCAL = "mask = np.abs(positions[None, :] - center[:, None]) <= window  # (N, L)"
MHA_MASK = ("    if mask is not None:\n"
            "        scores = np.where(mask[:, None, :], scores, -np.inf)  # same mask in every head\n")
MHA_WEIGHTS = "weights = exp_scores / exp_scores.sum(axis=2, keepdims=True)  # (N, h, L)"
MHA_SCORES = "scores = (Kh @ Qh[:, :, :, None]).squeeze(3) / math.sqrt(Dh)  # (N, h, L)"
MHA_K = "Kh = (K @ Wk).reshape(N, L, num_heads, Dh).transpose(0, 2, 1, 3)  # (N, h, L, Dh)"
MHA_V = "Vh = (V @ Wv).reshape(N, L, num_heads, Dh).transpose(0, 2, 1, 3)  # (N, h, L, Dh)"

SHARED = [  # the torch track's kinds of mistakes (tests/buggy/), in NumPy
    # ---------------------------------------------------------------- dot-product attention
    Bug("dot attention: scores not scaled", F, [(DOT_SCORES, "scores = (K @ q[:, :, None]).squeeze(2)  # (N, L)")],
        DOT, hint="not scaled"),
    Bug("dot attention: scores scaled by the value size", F,
        [(DOT_SCORES, "scores = (K @ q[:, :, None]).squeeze(2) / math.sqrt(V.shape[2])  # (N, L)")],
        DOT, hint="sqrt(Dv)"),
    Bug("dot attention: softmax over the batch axis", F,
        [(DOT_SOFTMAX, "    exp_scores = np.exp(scores - scores.max(axis=0, keepdims=True))\n"
                       "    weights = exp_scores / exp_scores.sum(axis=0, keepdims=True)\n")],
        DOT, hint="wrong axis"),
    Bug("dot attention: mask ignored", F, [(DOT_MASK, "")], DOT, hint="the mask is ignored"),
    Bug("dot attention: mask applied after the softmax", F,
        [(DOT_MASK, ""), (DOT_CONTEXT, DOT_WEIGHTS + "\n    if mask is not None:\n        weights = weights * mask\n"
                                       "    context = (weights[:, None, :] @ V).squeeze(1)  # (N, Dv)")],
        DOT, hint="applied after the softmax"),
    Bug("dot attention: mask applied after the softmax, weights renormalised", F,
        [(DOT_MASK, ""), (DOT_CONTEXT, DOT_WEIGHTS + "\n    if mask is not None:\n        weights = weights * mask\n"
                                       "        weights = weights / weights.sum(axis=1, keepdims=True)\n"
                                       "    context = (weights[:, None, :] @ V).squeeze(1)  # (N, Dv)")],
        DOT, hint="renormalised"),
    Bug("dot attention: masked scores multiplied by the mask", F,
        [("scores = np.where(mask, scores, -np.inf)  # a new array", "scores = scores * mask  #")],
        DOT, hint="instead of -inf"),
    Bug("dot attention: softmax without the max shift", F,
        [("exp_scores = np.exp(scores - shift)  # (N, L), at most 1", "exp_scores = np.exp(scores)  #")],
        DOT, hint="exp overflowed"),
    Bug("dot attention: mask=None not handled (~mask)", F,
        [(DOT_MASK, "    scores = np.where(~mask, -np.inf, scores)\n")], DOT, hint="NoneType"),
    Bug("dot attention: mask=None not handled (np.where(None, ...) masks every position)", F,
        [(DOT_MASK, "    scores = np.where(mask, scores, -np.inf)\n")], DOT, hint="contains nan"),
    Bug("dot attention backward: softmax backward without its subtraction term", F,
        [(DOT_SOFTMAX_BWD, "dscores = weights * dweights")], ["dot_attention_backward"], hint="second term"),
    Bug("dot attention backward: the 1/sqrt(Dk) scale forgotten", F,
        [("    dscores = dscores / math.sqrt(Dk)  # through the 1/sqrt(Dk) scale\n", "")],
        ["dot_attention_backward"], hint="missing the 1/sqrt(Dk)"),
    # ---------------------------------------------------------------- additive attention
    Bug("additive attention: mask ignored", F, [(ADD_MASK, "")], ADD, hint="the mask is ignored"),
    Bug("additive attention: mask applied after the softmax, weights renormalised", F,
        [(ADD_MASK, ""), (ADD_WEIGHTS, ADD_WEIGHTS + "\n    if mask is not None:\n"
                                       "        weights = weights * mask / (weights * mask).sum(axis=1, keepdims=True)")],
        ADD, hint="renormalised"),
    Bug("additive attention: softmax without the max shift", F, [(ADD_EXP, "exp_scores = np.exp(scores)\n")],
        ADD, hint="overflows"),
    Bug("additive attention backward: softmax backward without its subtraction term", F,
        [(ADD_SOFTMAX_BWD, "dscores = weights * dweights  # (N, L)")],
        ["additive_attention_backward"], hint="second term"),
    Bug("additive attention backward: tanh derivative skipped", F,
        [("dpre = dscores[:, :, None] * v * (1 - hidden * hidden)", "dpre = dscores[:, :, None] * v")],
        # No hint in this track (the torch track's: "derivative of tanh"): the first wrong output, dq, is pure
        # round-off here (sum_l dscores = 0), which the hint's model matches only bit for bit.
        ["additive_attention_backward"]),
    Bug("additive attention backward: gradient of q Wq averaged over the positions", F,
        [("dqWq = dpre.sum(axis=1)", "dqWq = dpre.mean(axis=1)")], ["additive_attention_backward"], hint="not the mean"),
    # ---------------------------------------------------------------- local attention mask
    Bug("local attention mask: window exclusive", F,
        [(LOCAL, "mask = np.abs(positions[None, :] - center[:, None]) < window  # (N, L)")],
        ["local_attention_mask"], hint="inclusive"),
    Bug("local attention mask: window on one side only", F,
        [(LOCAL, "mask = positions[None, :] - center[:, None] <= window  # (N, L)")],
        ["local_attention_mask"], hint="both sides"),
    Bug("local attention mask: Python slice with a negative start", F,
        [("    positions = np.arange(L, dtype=np.int64)  # (L,)\n    " + LOCAL + "\n",
          "    mask = np.zeros((center.shape[0], L), dtype=bool)\n"
          "    for n in range(center.shape[0]):\n"
          "        c = int(center[n])\n"
          "        mask[n, c - window:c + window + 1] = True\n")],
        ["local_attention_mask"], hint="negative"),
    # ---------------------------------------------------------------- hard attention
    Bug("hard attention: mask ignored", F,
        [("    if mask is not None:\n"
          "        scores = np.where(mask, scores, -np.inf)  # a masked position is never chosen\n", "")],
        HARD, hint="masked one"),
    Bug("hard attention: last index on ties", F,
        [("index = np.argmax(scores, axis=1).astype(np.int64)",
          "index = (scores.shape[1] - 1 - np.argmax(scores[:, ::-1], axis=1)).astype(np.int64)")],
        HARD, hint="lowest position"),
    Bug("hard attention backward: dV at every position", F,
        [("dV[rows, index] = dcontext", "dV = dV + dcontext[:, None, :]")], ["hard_attention_backward"],
        hint="every position"),
    # ---------------------------------------------------------------- multi-head attention
    Bug("multihead attention: scores not scaled", F,
        [(MHA_SCORES, "scores = (Kh @ Qh[:, :, :, None]).squeeze(3)  # (N, h, L)")], MHA, hint="not scaled"),
    Bug("multihead attention: scaled by the model width E", F,
        [(MHA_SCORES, "scores = (Kh @ Qh[:, :, :, None]).squeeze(3) / math.sqrt(E)  # (N, h, L)")],
        MHA, hint="the model width"),
    Bug("multihead attention: softmax over the heads", F,
        [("shift = scores.max(axis=2, keepdims=True)  # (N, h, 1)", "shift = scores.max(axis=1, keepdims=True)  #"),
         (MHA_WEIGHTS, "weights = exp_scores / exp_scores.sum(axis=1, keepdims=True)")],
        MHA, hint="heads axis"),
    Bug("multihead attention: mask ignored", F, [(MHA_MASK, "")], MHA, hint="the mask is ignored"),
    Bug("multihead attention: mask applied after the softmax", F,
        [(MHA_MASK, ""), (MHA_WEIGHTS, MHA_WEIGHTS + "\n    if mask is not None:\n"
                                       "        weights = weights * mask[:, None, :]")],
        MHA, hint="applied after the softmax"),
    Bug("multihead attention: mask applied after the softmax, weights renormalised", F,
        [(MHA_MASK, ""), (MHA_WEIGHTS, MHA_WEIGHTS + "\n    if mask is not None:\n"
                                       "        weights = weights * mask[:, None, :]\n"
                                       "        weights = weights / weights.sum(axis=2, keepdims=True)")],
        MHA, hint="renormalised"),
    Bug("multihead attention: softmax without the max shift", F,
        [("exp_scores = np.exp(scores - shift)  # (N, h, L)", "exp_scores = np.exp(scores)  # (N, h, L)")],
        MHA, hint="overflows"),
    Bug("multihead attention: heads interleaved instead of contiguous blocks", F,
        [("Qh = (q @ Wq).reshape(N, num_heads, Dh)", "Qh = (q @ Wq).reshape(N, Dh, num_heads).transpose(0, 2, 1)"),
         (MHA_K, "Kh = (K @ Wk).reshape(N, L, Dh, num_heads).transpose(0, 3, 1, 2)"),
         (MHA_V, "Vh = (V @ Wv).reshape(N, L, Dh, num_heads).transpose(0, 3, 1, 2)"),
         ("concat = heads.reshape(N, E)", "concat = heads.transpose(0, 2, 1).reshape(N, E)")],
        MHA, hint="interleaved"),
    Bug("multihead attention: keys and values reshaped to (N, h, L, Dh) without a transpose", F,
        [(MHA_K, "Kh = (K @ Wk).reshape(N, num_heads, L, Dh)"), (MHA_V, "Vh = (V @ Wv).reshape(N, num_heads, L, Dh)")],
        MHA, hint="mixes positions and heads"),
    Bug("multihead attention backward: softmax backward without its subtraction term", F,
        [("dscores = weights * (dweights - (weights * dweights).sum(axis=2, keepdims=True))",
          "dscores = weights * (dweights)")],
        ["multihead_attention_backward"], hint="second term"),
    Bug("multihead attention backward: dWo transposed", F,
        [("dWo = concat.T @ dout  # (E, E)", "dWo = dout.T @ concat  # (E, E)")],
        ["multihead_attention_backward"], hint="transpose of the right gradient"),
]

NUMPY_OWN = [  # NumPy's own mistakes
    Bug("dot attention: np.sqrt(Dk) (a float64 NumPy scalar) upcasts float32 scores", F,
        [(DOT_SCORES, "scores = (K @ q[:, :, None]).squeeze(2) / np.sqrt(Dk)  # (N, L)")], DOT, hint="dtype"),
    Bug("multihead attention: np.sqrt(Dh) upcasts float32 scores", F,
        [(MHA_SCORES, "scores = (Kh @ Qh[:, :, :, None]).squeeze(3) / np.sqrt(Dh)  # (N, h, L)")], MHA, hint="dtype"),
    Bug("hard attention backward: dV = np.zeros(V.shape) (float64)", F,
        [("dV = np.zeros_like(V)  # (N, L, Dv)", "dV = np.zeros(V.shape)  # (N, L, Dv)")],
        ["hard_attention_backward"], hint="np.zeros_like"),
    Bug("hard attention backward: dq, dK = np.zeros((N, Dk)), np.zeros((N, L, Dk)) (float64)", F,
        [("dq = np.zeros_like(q)  # (N, Dk)", "dq = np.zeros(q.shape)  # (N, Dk)"),
         ("dK = np.zeros_like(K)  # (N, L, Dk)", "dK = np.zeros(K.shape)  # (N, L, Dk)")],
        ["hard_attention_backward"], hint="dtype=x.dtype"),
    Bug("dot attention: the query scaled in place (q /= sqrt(Dk))", F,
        [(DOT_SCORES, "q /= math.sqrt(Dk)  # scale the query once\n"
                      "    scores = (K @ q[:, :, None]).squeeze(2)  # (N, L)")],
        DOT, hint="modified its input"),
    Bug("additive attention backward: dcontext edited in place", F,
        [(ADD_SOFTMAX_BWD, "dcontext *= 0  # done with it\n    " + ADD_SOFTMAX_BWD)],
        ["additive_attention_backward"], hint="modified its input"),
    Bug("dot attention: context squeezed with .squeeze() (N=1 or Dv=1 loses an axis)", F,
        [(DOT_CONTEXT, DOT_WEIGHTS + "\n    context = (weights[:, None, :] @ V).squeeze()  # (N, Dv)")],
        ["dot_attention_forward"], hint="a dimension of size 1 went missing"),
    Bug("additive attention: scores by hidden @ v[:, None] squeezed with .squeeze()", F,
        [("scores = hidden @ v  # (N, L)", "scores = (hidden @ v[:, None]).squeeze()  # (N, L)")], ADD,
        hint="raised ValueError"),  # L=1: (N, 1) squeezed to (N,) broadcasts against the (N, 1) mask
    Bug("dot attention: context = weights @ V (a batch of matrices times one matrix)", F,
        [(DOT_CONTEXT, DOT_WEIGHTS + "\n    context = weights @ V  # (N, Dv)")],
        ["dot_attention_forward"], hint="has shape"),
    Bug("dot attention backward: dV by np.dot instead of an outer product", F,
        [(DOT_DV, "Dk = q.shape[1]\n    dV = np.dot(weights[:, :, None], dcontext[:, None, :])  # (N, L, Dv)")],
        ["dot_attention_backward"], hint="has shape"),
    Bug("dot attention: softmax sum without keepdims", F,
        [(DOT_WEIGHTS, "weights = exp_scores / exp_scores.sum(axis=1)  # (N, L), softmax")],
        DOT, hint="broadcast"),
    Bug("additive attention backward: dv summed over axis 0 only", F,
        [("dv = (dscores[:, :, None] * hidden).sum(axis=(0, 1))  # (A,)",
          "dv = (dscores[:, :, None] * hidden).sum(axis=0)  # (A,)")],
        ["additive_attention_backward"], hint="shape"),
    Bug("multihead attention backward: dKp reshaped without transposing heads and positions back", F,
        [("dKp = (dscores[:, :, :, None] * Qh[:, :, None, :]).transpose(0, 2, 1, 3).reshape(N, L, E)",
          "dKp = (dscores[:, :, :, None] * Qh[:, :, None, :]).reshape(N, L, E)")],
        ["multihead_attention_backward"]),
]

BUGS = SHARED + NUMPY_OWN
