"""attention.py: dot-product, additive, local, hard and multi-head attention for one decoder step.

For each graded function: its input maker, its torch oracle (F.scaled_dot_product_attention,
F.multi_head_attention_forward, and plain torch expressions of the definitions for the
additive head, the local mask and hard attention; every gradient from autograd), its cases and
the known mistakes that earn a hint. The FUNCTIONS list at the bottom is this file's registry.

Masks: `mask` is an input like any other; the cases without a mask pass None (the student's
`mask=None` path). Cases that catch the usual masking mistakes: a mask that removes each row's
largest score, rows with a single allowed position, all scores shifted by 1e3 (a softmax
without the max shift overflows) and a masked position scoring far above the rest (masking
after the softmax gives 0/0).
"""
import math

import torch
import torch.nn.functional as F

from ..engine.detectors import transposed_weight_grad
from ..engine.spec import CACHE, Case, GradedFunction, Mistake
from .cases import options, size_one_cases, standard_cases
from .common import F64, backward_maker, layer_oracles, model_mistake, randint, randn

FILE = "attention"
NEG_INF = float("-inf")


# --------------------------------------------------------------------------- oracles
def _sdpa(q, K, V, mask):
    """torch's scaled dot-product attention of one query per row: (N, Dv)."""
    attn_mask = None if mask is None else mask.unsqueeze(1)  # (N, 1, L): True = may attend
    return F.scaled_dot_product_attention(q.unsqueeze(1), K, V, attn_mask=attn_mask).squeeze(1)


def _sdpa_weights(q, K, mask):
    """The weights of _sdpa, read off by attending over the identity: row l of I is e_l."""
    N, L, _ = K.shape
    eye = torch.eye(L, dtype=K.dtype, device=K.device).expand(N, L, L).contiguous()
    return _sdpa(q.detach(), K.detach(), eye, mask)  # (N, L)


DOT_ARGS = ("q", "K", "V", "mask")
DOT_GRADS = ("q", "K", "V")


dot_attention_forward_oracle, dot_attention_backward_oracle = layer_oracles(
    lambda i: (_sdpa(i["q"], i["K"], i["V"], i["mask"]), _sdpa_weights(i["q"], i["K"], i["mask"])),
    ("context", "weights"), DOT_GRADS, ("dcontext", None))


ADD_ARGS = ("q", "K", "V", "Wq", "Wk", "v", "mask")
ADD_GRADS = ("q", "K", "V", "Wq", "Wk", "v")


def _torch_additive(i):
    """The lecture's learned head, as written: a_l = v . tanh(q Wq + K_l Wk), masked softmax."""
    hidden = torch.tanh(F.linear(i["q"], i["Wq"].T).unsqueeze(1) + F.linear(i["K"], i["Wk"].T))  # (N, L, A)
    scores = torch.einsum("nla,a->nl", hidden, i["v"])
    if i["mask"] is not None:
        scores = scores.masked_fill(~i["mask"], NEG_INF)
    weights = torch.softmax(scores, dim=1)
    return torch.einsum("nl,nld->nd", weights, i["V"]), weights


additive_attention_forward_oracle, additive_attention_backward_oracle = layer_oracles(
    _torch_additive, ("context", "weights"), ADD_GRADS, ("dcontext", None))


def local_attention_mask_oracle(i):
    positions = torch.arange(i["L"], device=i["center"].device).unsqueeze(0)  # (1, L)
    lo = (i["center"] - i["window"]).unsqueeze(1)
    hi = (i["center"] + i["window"]).unsqueeze(1)
    return {"mask": (positions >= lo) & (positions <= hi)}


def _torch_hard(i):
    """The first allowed position holding the largest unscaled score K_l . q, and its value."""
    q, K, V, mask = i["q"], i["K"], i["V"], i["mask"]
    N, L, _ = K.shape
    scores = torch.einsum("nld,nd->nl", K.detach(), q.detach())
    allowed = torch.ones_like(scores, dtype=torch.bool) if mask is None else mask
    best = scores.masked_fill(~allowed, NEG_INF).amax(dim=1, keepdim=True)
    positions = torch.arange(L, device=K.device).expand(N, L)
    index = torch.where(allowed & (scores == best), positions, L).amin(dim=1)  # lowest on ties
    return V[torch.arange(N, device=V.device), index], index


hard_attention_forward_oracle, hard_attention_backward_oracle = layer_oracles(
    _torch_hard, ("context", "index"), DOT_GRADS, ("dcontext", None))  # q, K never reach the output


MHA_ARGS = ("q", "K", "V", "Wq", "Wk", "Wv", "Wo", "num_heads", "mask")
MHA_GRADS = ("q", "K", "V", "Wq", "Wk", "Wv", "Wo")


def _torch_mha(i):
    """F.multi_head_attention_forward with our weights (transposed), no biases: (N, E), (N, h, L)."""
    q, K, V, mask = i["q"], i["K"], i["V"], i["mask"]
    E = q.shape[1]
    out, weights = F.multi_head_attention_forward(
        q.unsqueeze(0), K.transpose(0, 1), V.transpose(0, 1), E, i["num_heads"],
        None, None, None, None, False, 0.0, i["Wo"].T, None, training=False,
        key_padding_mask=None if mask is None else ~mask, need_weights=True,
        use_separate_proj_weight=True, q_proj_weight=i["Wq"].T, k_proj_weight=i["Wk"].T,
        v_proj_weight=i["Wv"].T, average_attn_weights=False)
    return out.squeeze(0), weights.squeeze(2)  # (1, N, E) -> (N, E); (N, h, 1, L) -> (N, h, L)


multihead_attention_forward_oracle, multihead_attention_backward_oracle = layer_oracles(
    _torch_mha, ("out", "weights"), MHA_GRADS, ("dout", None))


# --------------------------------------------------------------------------- input makers
def _make_mask(g, case, scores):
    """The case's mask (N, L) bool, or None. scores (N, L): larger = more attended.

    "random": about 60% allowed, row 0's largest score masked, the last row a single allowed
    position, and every position allowed in some row (a softmax over the wrong axis then stays
    finite, and earns its hint); "drop_max": every row's largest score masked; "single": one
    allowed position per row; "none": no mask (None). Every row keeps an allowed position.
    """
    N, L = scores.shape
    kind = case.opt("mask", "random")
    if kind == "none":
        return None
    rows = torch.arange(N)
    top = scores.argmax(dim=1)
    if kind == "single":
        mask = torch.zeros(N, L, dtype=torch.bool)
        mask[rows, randint(g, L, N)] = True
        return mask
    mask = torch.rand(N, L, generator=g, dtype=F64) < 0.6
    if kind == "drop_max":
        mask[rows, top] = False
    else:
        mask[0, top[0]] = False
        if N > 1:
            mask[N - 1] = False
            mask[N - 1, randint(g, L, 1)] = True
        for l in range(L):  # a position masked in every row: allow it in a middle row, or row 0
            if not mask[:, l].any() and N > 1:
                n = 1 if N > 2 else 0
                if not (n == 0 and l == int(top[0])):
                    mask[n, l] = True
    for n in range(N):  # an empty row gets the position after its largest score back
        if not mask[n].any():
            mask[n, (int(top[n]) + 1) % L] = True
    return mask


def _big_rows(N):
    """The rows that get large scores: all but the last (which stays ordinary), so that a
    NaN from an overflow or a 0/0 shows in a recognisable pattern of rows."""
    return torch.arange(max(N - 1, 1))


def _spike_positions(g, mask):
    """One masked position in each of the _big_rows (masking one where a row has none):
    (mask, positions of those rows)."""
    N, L = mask.shape
    mask = mask.clone()
    rows = _big_rows(N)
    at = torch.empty(len(rows), dtype=torch.int64)
    for n in range(len(rows)):
        masked = (~mask[n]).nonzero().flatten()
        if len(masked) == 0:
            masked = randint(g, L, 1)
            mask[n, masked] = False
        at[n] = masked[int(randint(g, len(masked), 1))]
        if not mask[n].any():
            mask[n, (int(at[n]) + 1) % L] = True
    return mask, at


def _shift_along(q, c):
    """Rows u with u . q = c (N, Dk): added to a key, it raises that key's score K_l . q by c."""
    return c * q / (q * q).sum(dim=1, keepdim=True)


def make_dot(g, case, backward=False):
    N, L, Dk, Dv = (case.sizes[k] for k in ("N", "L", "Dk", "Dv"))
    q, K, V = randn(g, N, Dk), randn(g, N, L, Dk), randn(g, N, L, Dv)
    rows = _big_rows(N)
    if case.opt("shift"):  # every score of a row + shift: exp(scores) overflows
        # Multiples of 1/4 and Dk a power of 4 (the case's size): every score is exact, however it
        # is summed. Key feature 0 is 1 everywhere, so q[:, 0] adds the same amount to every score.
        q, K = torch.round(4 * q) / 4, torch.round(4 * K) / 4
        K[rows, :, 0] = 1.0
        q[rows, 0] = case.opt("shift") * math.sqrt(Dk)
    mask = _make_mask(g, case, torch.einsum("nld,nd->nl", K, q))
    if case.opt("spike"):  # one masked position per row scores `spike` above the rest
        mask, at = _spike_positions(g, mask)
        K[rows, at] += _shift_along(q[rows], case.opt("spike") * math.sqrt(Dk))
    i = {"q": q, "K": K, "V": V, "mask": mask}
    if backward:
        i["dcontext"] = randn(g, N, Dv)
    return i


def make_additive(g, case, backward=False):
    N, L, Dq, Dk, Dv, A = (case.sizes[k] for k in ("N", "L", "Dq", "Dk", "Dv", "A"))
    q, K, V = randn(g, N, Dq), randn(g, N, L, Dk), randn(g, N, L, Dv)
    Wq, Wk = randn(g, Dq, A, scale=1 / Dq ** 0.5), randn(g, Dk, A, scale=1 / Dk ** 0.5)
    v = randn(g, A)
    scores = torch.tanh((q @ Wq).unsqueeze(1) + K @ Wk) @ v
    mask = _make_mask(g, case, scores)
    big = case.opt("shift") or case.opt("spike")
    if big:
        # Hidden units 0 and 1 read only key features 0 and 1 (not q). Where those features are
        # +-40 the units' tanh is exactly +-1, and they add +-big/2 each to the score.
        Wq[:, :2] = 0
        Wk[:2, :] = 0
        Wk[:, :2] = 0
        Wk[0, 0] = Wk[1, 1] = 1
        v[0] = v[1] = big / 2
        K[:, :, 0] = -40.0  # the two units cancel: -big/2 + big/2
        K[:, :, 1] = 40.0
        rows = _big_rows(N)
        if case.opt("shift"):  # every score of a row shifted by +-big (sign by row)
            sign = torch.sign(randn(g, len(rows))).unsqueeze(1)
            K[rows, :, 0] = K[rows, :, 1] = 40.0 * sign
        else:  # +big at one masked position per row
            mask, at = _spike_positions(g, mask)
            K[rows, at, 0] = 40.0
    i = {"q": q, "K": K, "V": V, "Wq": Wq, "Wk": Wk, "v": v, "mask": mask}
    if backward:
        i["dcontext"] = randn(g, N, Dv)
    return i


def make_local(g, case):
    N, L, W = (case.sizes[k] for k in ("N", "L", "W"))
    center = randint(g, L, N)
    center[0] = 0  # windows clipped at both ends of the sequence
    if N > 1:
        center[1] = L - 1
    if N > 2:
        center[2] = min(1, L - 1)
    return {"L": L, "center": center, "window": W}


def make_hard(g, case, backward=False):
    """Small integer q and K, so that every score K_l . q is exact and ties are real ties."""
    N, L, Dk, Dv = (case.sizes[k] for k in ("N", "L", "Dk", "Dv"))
    q = (randint(g, 5, N, Dk) - 2).to(F64)
    K = (randint(g, 5, N, L, Dk) - 2).to(F64)
    V = randn(g, N, L, Dv)
    if L > 1:  # copy a row's best key to another position: a tie at the maximum
        rows = range(N) if case.opt("ties") else [min(1, N - 1)]
        for n in rows:
            best = int(torch.argmax(K[n] @ q[n]))
            other = (best + 1 + int(randint(g, L - 1, 1))) % L
            K[n, other] = K[n, best]
    mask = _make_mask(g, case, torch.einsum("nld,nd->nl", K, q))
    i = {"q": q, "K": K, "V": V, "mask": mask}
    if backward:
        i["dcontext"] = randn(g, N, Dv)
    return i


def make_mha(g, case, backward=False):
    N, L, E, h = (case.sizes[k] for k in ("N", "L", "E", "heads"))
    Dh = E // h
    q, K, V = randn(g, N, E), randn(g, N, L, E), randn(g, N, L, E)
    Wq, Wk, Wv, Wo = (randn(g, E, E, scale=1 / E ** 0.5) for _ in range(4))
    big = case.opt("shift") or case.opt("spike")
    if big:  # an orthogonal Wk: u below stays moderate, so that float32 holds K + u well
        Wk = torch.linalg.qr(randn(g, E, E))[0]
    Q = (q @ Wq).reshape(N, h, Dh)
    per_head = torch.einsum("nlhd,nhd->nl", (K @ Wk).reshape(N, L, h, Dh), Q)  # summed over heads
    mask = _make_mask(g, case, per_head)
    if big:  # u Wk = T, where T raises every head's score by `big`: T_j = big sqrt(Dh) Q_j / |Q_j|^2
        T = (big * math.sqrt(Dh) * Q / (Q * Q).sum(dim=2, keepdim=True)).reshape(N, E)
        u = torch.linalg.solve(Wk.T, T.T).T  # (N, E)
        rows = _big_rows(N)
        if case.opt("shift"):
            K[rows] += u[rows].unsqueeze(1)
        else:
            mask, at = _spike_positions(g, mask)
            K[rows, at] += u[rows]
    i = {"q": q, "K": K, "V": V, "Wq": Wq, "Wk": Wk, "Wv": Wv, "Wo": Wo, "num_heads": h, "mask": mask}
    if backward:
        i["dout"] = randn(g, N, E)
    return i



# --------------------------------------------------------------------------- mistakes
def _softmax(scores, mask, how="right", dim=-1):
    """Attention weights from scores (mask broadcast to scores), the right way or a known wrong way."""
    if how == "naive":  # exp of the raw scores, no max shift
        e = torch.exp(scores if mask is None else scores.masked_fill(~mask, NEG_INF))
        return e / e.sum(dim=dim, keepdim=True)
    if mask is None or how == "ignored":
        return torch.softmax(scores, dim=dim)
    if how == "right":
        return torch.softmax(scores.masked_fill(~mask, NEG_INF), dim=dim)
    if how == "zeroed":  # scores * mask: masked scores become 0, not -inf
        return torch.softmax(scores * mask, dim=dim)
    w = torch.softmax(scores, dim=dim) * mask  # the mask applied after the softmax
    if how == "after_renorm":
        w = w / w.sum(dim=dim, keepdim=True)
    return w


def _softmax_backward(w, dw, dim=-1, subtract=True):
    if not subtract:
        return w * dw
    return w * (dw - (w * dw).sum(dim=dim, keepdim=True))


HINT_SCALE_MISSING = ("the scores are not scaled: divide K q by sqrt(Dk), the size of a key "
                      "(scores = K q / sqrt(Dk))")
HINT_SCALE_DK = "the scores are divided by Dk; the scale is 1/sqrt(Dk)"
HINT_SCALE_DV = ("the scores are divided by sqrt(Dv), the size of a value; the scale uses the size of "
                 "a key and query, 1/sqrt(Dk)")
HINT_AXIS = ("the softmax is taken over the wrong axis (the batch axis): the weights of each row "
             "must sum to 1 over the L encoder positions (dim=1)")
HINT_MASK_IGNORED = ("masked positions still get weight: the mask is ignored. Set the scores of masked "
                     "positions to -inf before the softmax: scores.masked_fill(~mask, float('-inf'))")
HINT_MASK_AFTER = ("masked positions get weight 0, but the weights no longer sum to 1: the mask was "
                   "applied after the softmax. Mask the scores (set them to -inf) before the softmax")
HINT_MASK_RENORM = ("NaN where a masked position has by far the largest score: the softmax was taken "
                    "before masking (its other weights underflow to 0) and then renormalised, 0/0. "
                    "Set masked scores to -inf before the softmax")
HINT_MASK_ZEROED = ("masked scores were set to 0 (scores * mask) instead of -inf: exp(0) = 1, so masked "
                    "positions still get weight. Use scores.masked_fill(~mask, float('-inf'))")
HINT_NAIVE = ("the softmax overflows for large scores (exp(1000) = inf, inf/inf = NaN): subtract each "
              "row's largest allowed score before exp, or use torch.softmax")
HINT_NO_SUBTRACT = ("the softmax backward is missing its second term: da_l = w_l * (dw_l - sum_j w_j dw_j), "
                    "not just w_l * dw_l (every weight depends on every score)")
HINT_BWD_SCALE = ("dq and dK are missing the 1/sqrt(Dk) of the forward pass: the gradient of the scores "
                  "must be divided by sqrt(Dk) too")


def _mask_mistakes(model):
    """The mask and softmax mistakes, for a forward model(inputs, how=...)."""
    return [
        model_mistake(HINT_MASK_IGNORED, lambda i: model(i, how="ignored")),
        model_mistake(HINT_MASK_AFTER, lambda i: model(i, how="after")),
        model_mistake(HINT_MASK_RENORM, lambda i: model(i, how="after_renorm")),
        model_mistake(HINT_MASK_ZEROED, lambda i: model(i, how="zeroed")),
        model_mistake(HINT_NAIVE, lambda i: model(i, how="naive")),
    ]


def _dot_model(i, scale="sqrt", how="right", dim=1):
    q, K, V, mask = i["q"], i["K"], i["V"], i["mask"]
    Dk, Dv = q.shape[1], V.shape[2]
    div = {"sqrt": math.sqrt(Dk), "none": 1.0, "Dk": float(Dk), "Dv": math.sqrt(Dv)}[scale]
    w = _softmax(torch.einsum("nld,nd->nl", K, q) / div, mask, how, dim)
    return {"context": torch.einsum("nl,nld->nd", w, V), "weights": w}


def _dot_forward_mistakes():
    return [
        model_mistake(HINT_SCALE_MISSING, lambda i: _dot_model(i, scale="none")),
        model_mistake(HINT_SCALE_DK, lambda i: _dot_model(i, scale="Dk")),
        model_mistake(HINT_SCALE_DV, lambda i: _dot_model(i, scale="Dv")),
        model_mistake(HINT_AXIS, lambda i: _dot_model(i, dim=0)),
    ] + _mask_mistakes(lambda i, how: _dot_model(i, how=how))


def _dot_backward_model(i, subtract=True, scale=True):
    q, K, V = i["q"], i["K"], i["V"]
    Dk = q.shape[1]
    w = _dot_model(i)["weights"]
    da = _softmax_backward(w, torch.einsum("nld,nd->nl", V, i["dcontext"]), subtract=subtract)
    if scale:
        da = da / math.sqrt(Dk)
    return {"dq": torch.einsum("nl,nld->nd", da, K), "dK": da.unsqueeze(2) * q.unsqueeze(1),
            "dV": w.unsqueeze(2) * i["dcontext"].unsqueeze(1)}


def _dot_backward_mistakes():
    return [
        model_mistake(HINT_NO_SUBTRACT, lambda i: _dot_backward_model(i, subtract=False)),
        model_mistake(HINT_BWD_SCALE, lambda i: _dot_backward_model(i, scale=False)),
    ]


def _additive_model(i, how="right", dim=1):
    hidden = torch.tanh((i["q"] @ i["Wq"]).unsqueeze(1) + i["K"] @ i["Wk"])
    w = _softmax(hidden @ i["v"], i["mask"], how, dim)
    return {"context": torch.einsum("nl,nld->nd", w, i["V"]), "weights": w}


def _additive_backward_model(i, subtract=True, tanh_grad=True, positions="sum"):
    q, K, V, Wq, Wk, v = (i[n] for n in ADD_GRADS)
    hidden = torch.tanh((q @ Wq).unsqueeze(1) + K @ Wk)  # (N, L, A)
    w = _additive_model(i)["weights"]
    da = _softmax_backward(w, torch.einsum("nld,nd->nl", V, i["dcontext"]), subtract=subtract)
    dpre = da.unsqueeze(2) * v * ((1 - hidden ** 2) if tanh_grad else 1.0)
    dqW = dpre.sum(dim=1) if positions == "sum" else dpre.mean(dim=1)
    return {"dq": dqW @ Wq.T, "dK": dpre @ Wk.T, "dWq": q.T @ dqW,
            "dWk": torch.einsum("nld,nla->da", K, dpre), "dv": torch.einsum("nl,nla->a", da, hidden)}


def _additive_forward_mistakes():
    return [model_mistake(HINT_AXIS, lambda i: _additive_model(i, dim=0))] + \
        _mask_mistakes(lambda i, how: _additive_model(i, how=how))


def _additive_backward_mistakes():
    return [
        model_mistake(HINT_NO_SUBTRACT, lambda i: _additive_backward_model(i, subtract=False)),
        model_mistake("the backward skips the derivative of tanh: multiply by 1 - tanh(q Wq + K_l Wk)**2 "
                      "(1 - hidden**2 with the hidden values cached by the forward pass)",
                      lambda i: _additive_backward_model(i, tanh_grad=False)),
        model_mistake("q Wq is added at every one of the L positions, so its gradient is the sum over "
                      "positions, not the mean", lambda i: _additive_backward_model(i, positions="mean")),
    ]


def _local_model(i, how):
    L, center, window = i["L"], i["center"].cpu(), i["window"]
    N = center.shape[0]
    d = torch.arange(L).unsqueeze(0) - center.unsqueeze(1)  # (N, L): l - center
    if how == "strict":
        return {"mask": d.abs() < window}
    if how == "one_sided":
        return {"mask": d <= window}
    mask = torch.zeros(N, L, dtype=torch.bool)
    for n in range(N):  # a Python slice: a negative start counts from the end
        c = int(center[n])
        mask[n, c - window:c + window + (1 if how == "slice" else 0)] = True
    return {"mask": mask}


LOCAL_MISTAKES = [
    model_mistake("the window is inclusive: abs(l - center) <= window keeps the positions exactly window "
                  "away (yours drops them)", lambda i: _local_model(i, "strict")),
    model_mistake("the window extends on both sides of the center: abs(l - center) <= window (yours "
                  "allows every position before the center)", lambda i: _local_model(i, "one_sided")),
    model_mistake("near the start of the sequence center - window is negative, and a Python slice counts "
                  "a negative start from the end: clip the window at 0 and L-1, or compare "
                  "torch.arange(L) with the center", lambda i: _local_model(i, "slice")),
    model_mistake("the window ends one position early: a slice center-window:center+window stops before "
                  "center+window (use center+window+1)", lambda i: _local_model(i, "slice_short")),
]


def _hard_model(i, ties="first", masked=True):
    q, K, V, mask = i["q"], i["K"], i["V"], i["mask"]
    N = q.shape[0]
    scores = torch.einsum("nld,nd->nl", K, q)
    if mask is not None and masked:
        scores = scores.masked_fill(~mask, NEG_INF)
    if ties == "last":
        index = scores.shape[1] - 1 - torch.argmax(scores.flip(1), dim=1)
    else:
        index = torch.argmax(scores, dim=1)
    context = V[torch.arange(N), index]
    if "dcontext" in i:  # dV spread over every position, not routed to the chosen one
        return {"context": context, "index": index, "dV": i["dcontext"].unsqueeze(1).expand_as(V)}
    return {"context": context, "index": index}


HARD_MISTAKES = [
    model_mistake("the chosen position is a masked one: take the argmax over the allowed positions only "
                  "(set masked scores to -inf first)", lambda i: _hard_model(i, masked=False)),
    model_mistake("on ties the lowest position wins (torch.argmax returns the first maximum); yours picks "
                  "a later one", lambda i: _hard_model(i, ties="last")),
]
HARD_BACKWARD_MISTAKES = [
    model_mistake("dV is dcontext at every position: the context is V[n, index[n]], so only that "
                  "position of each row gets dcontext; the others get 0", _hard_model),
]


def _mha_model(i, layout="blocks", scale="head", dim=2, how="right"):
    """Multi-head attention written out, with the layout of the heads, the scale and the softmax
    axis as knobs. layout: "blocks" (right: head j owns columns j*Dh...(j+1)*Dh-1),
    "interleaved" (head j owns columns j, j+h, j+2h, ...), "no_transpose" (K Wk and V Wv reshaped
    straight to (N, h, L, Dh))."""
    q, K, V, Wq, Wk, Wv, Wo, h, mask = (i[n] for n in MHA_ARGS)
    N, L, E = K.shape
    Dh = E // h

    def split(x):  # (..., E) -> (..., h, Dh)
        if layout == "interleaved":
            return x.reshape(*x.shape[:-1], Dh, h).transpose(-1, -2)
        return x.reshape(*x.shape[:-1], h, Dh)

    Q = split(q @ Wq)  # (N, h, Dh)
    if layout == "no_transpose":
        Kh, Vh = (K @ Wk).reshape(N, h, L, Dh), (V @ Wv).reshape(N, h, L, Dh)
    else:
        Kh, Vh = split(K @ Wk).transpose(1, 2), split(V @ Wv).transpose(1, 2)  # (N, h, L, Dh)
    div = {"head": math.sqrt(Dh), "model": math.sqrt(E), "none": 1.0}[scale]
    scores = torch.einsum("nhld,nhd->nhl", Kh, Q) / div
    w = _softmax(scores, None if mask is None else mask.unsqueeze(1), how, dim)  # (N, h, L)
    heads = torch.einsum("nhl,nhld->nhd", w, Vh)
    concat = heads.transpose(1, 2).reshape(N, E) if layout == "interleaved" else heads.reshape(N, E)
    return {"out": concat @ Wo, "weights": w}


def _mha_backward_no_subtract(i):
    """The right forward pass, a backward whose softmax step lacks its subtraction term."""
    q, K, V, Wq, Wk, Wv, Wo, h, mask = (i[n] for n in MHA_ARGS)
    N, L, E = K.shape
    Dh = E // h
    Q = (q @ Wq).reshape(N, h, Dh)
    Kh = (K @ Wk).reshape(N, L, h, Dh).transpose(1, 2)
    Vh = (V @ Wv).reshape(N, L, h, Dh).transpose(1, 2)
    w = _mha_model(i)["weights"]
    dheads = (i["dout"] @ Wo.T).reshape(N, h, Dh)
    da = w * torch.einsum("nhld,nhd->nhl", Vh, dheads) / math.sqrt(Dh)
    dQ = torch.einsum("nhl,nhld->nhd", da, Kh).reshape(N, E)
    dKp = (da.unsqueeze(3) * Q.unsqueeze(2)).transpose(1, 2).reshape(N, L, E)
    return {"dq": dQ @ Wq.T, "dK": dKp @ Wk.T, "dWq": q.T @ dQ,
            "dWk": K.reshape(-1, E).T @ dKp.reshape(-1, E)}


HINT_HEADS_AXIS = ("the softmax is taken over the heads axis: each head's weights must sum to 1 over "
                   "the L encoder positions (the last axis of the (N, num_heads, L) scores)")
MHA_FORWARD_MISTAKES = [
    model_mistake("the scores are not scaled: divide each head's scores by sqrt(E/num_heads), the width "
                  "of one head", lambda i: _mha_model(i, scale="none")),
    model_mistake("each head's scores are divided by sqrt(E), the model width; the scale of a head is "
                  "1/sqrt(E/num_heads), the width of one head", lambda i: _mha_model(i, scale="model")),
    model_mistake(HINT_HEADS_AXIS, lambda i: _mha_model(i, dim=1)),
    model_mistake("the heads are interleaved columns (head j = columns j, j+num_heads, ...): head j is the "
                  "contiguous block of columns j*E/num_heads ... (j+1)*E/num_heads - 1, i.e. "
                  "reshape(..., num_heads, E // num_heads)", lambda i: _mha_model(i, layout="interleaved")),
    model_mistake("K Wk (N, L, E) was reshaped straight to (N, num_heads, L, E/num_heads), which mixes "
                  "positions and heads: reshape to (N, L, num_heads, E/num_heads), then transpose(1, 2)",
                  lambda i: _mha_model(i, layout="no_transpose")),
] + _mask_mistakes(lambda i, how: _mha_model(i, how=how))
MHA_BACKWARD_MISTAKES = [
    model_mistake(HINT_NO_SUBTRACT, _mha_backward_no_subtract),
    Mistake("it equals the transpose of the right gradient: for y = x @ W the weight gradient is "
            "x.T @ dy, of shape (E, E) either way, so only the values show it", transposed_weight_grad),
]


# --------------------------------------------------------------------------- registry
def _cases(small, medium, edges, public=(), saturate=None, saturated_rtol=None):
    """standard_cases plus public float64 cases (name, sizes, opts) right after the small ones."""
    cases = standard_cases(small, medium, edges, saturate=saturate, saturated_rtol=saturated_rtol)
    extra = [Case(name, sizes, torch.float64, seed=10 + k, opts=options(opts))
             for k, (name, sizes, opts) in enumerate(public)]
    return cases[:2] + extra + cases[2:]


NO_MASK = {"mask": "none"}
BIG_SCORES = {"shift": 100.0}  # every score of most rows + 100: exp overflows in float32
# Multi-head backward on those scores: the shift reaches the keys through K + u with u in the
# hundreds, and dWk = sum_l (K_l + u)^T g_l cancels u against sum_l g_l = 0, which float32 holds only
# to its rounding: the reference reaches 3.4e-2 (max over 8400 outputs, 600 seeds). NaN or inf
# from an overflow, and errors of order one from a wrong formula, stay far outside 1e-1.
MHA_SATURATED_RTOL = 1e-1
DOT_SMALL, DOT_MEDIUM = dict(N=3, L=5, Dk=4, Dv=3), dict(N=6, L=9, Dk=8, Dv=5)
DOT_PUBLIC = [("no mask (mask=None)", DOT_SMALL, NO_MASK)]
DOT_EDGES = [
    ("mask removes every row's largest score", dict(N=4, L=6, Dk=3, Dv=2), {"mask": "drop_max"}),
    ("one allowed position per row", dict(N=4, L=6, Dk=3, Dv=2), {"mask": "single"}),
    ("large scores (+1e3 on every score of most rows)", dict(N=4, L=6, Dk=16, Dv=2), {"shift": 1e3}),
    ("a masked position scores 1e3 above the rest (most rows)", dict(N=4, L=6, Dk=3, Dv=2), {"spike": 1e3}),
    ("L=1", dict(N=3, L=1, Dk=4, Dv=3), {}),
    ("N=1, Dk=1, no mask", dict(N=1, L=5, Dk=1, Dv=2), NO_MASK),
]
# Sizes of 1 that no case above has (cases.size_one_cases), appended after every other case; the
# same for the attentions below.
DOT_SIZE_ONE = size_one_cases(DOT_SMALL, ["Dv"])
ADD_SMALL, ADD_MEDIUM = dict(N=3, L=5, Dq=4, Dk=3, Dv=2, A=6), dict(N=5, L=8, Dq=6, Dk=5, Dv=4, A=7)
ADD_PUBLIC = [("no mask (mask=None)", ADD_SMALL, NO_MASK)]
ADD_EDGES = [
    ("mask removes every row's largest score", ADD_SMALL, {"mask": "drop_max"}),
    ("one allowed position per row", ADD_SMALL, {"mask": "single"}),
    ("large scores (+-1e3 on every score of most rows)", ADD_SMALL, {"shift": 1e3}),
    ("a masked position scores 1e3 above the rest (most rows)", ADD_SMALL, {"spike": 1e3}),
    ("L=1, A=1", dict(N=3, L=1, Dq=2, Dk=3, Dv=2, A=1), {}),
]
ADD_SIZE_ONE = size_one_cases(ADD_SMALL, ["N", "Dq", "Dk", "Dv"])
LOCAL_SMALL, LOCAL_MEDIUM = dict(N=4, L=7, W=2), dict(N=10, L=16, W=3)
LOCAL_EDGES = [
    ("window 0 (the center only)", dict(N=4, L=6, W=0), {}),
    ("window wider than the sequence", dict(N=4, L=5, W=7), {}),
    ("windows clipped at both ends", dict(N=5, L=5, W=3), {}),
    ("L=1", dict(N=3, L=1, W=1), {}),
]
# W, the window, is a number and no tensor's size: its 1 is the L=1 case's (W=0 has its own case).
LOCAL_SIZE_ONE = size_one_cases(LOCAL_SMALL, ["N"])
HARD_SMALL, HARD_MEDIUM = dict(N=4, L=6, Dk=3, Dv=2), dict(N=8, L=10, Dk=4, Dv=3)
HARD_PUBLIC = [("no mask (mask=None)", HARD_SMALL, NO_MASK),
               ("ties: duplicate keys at every row's maximum", HARD_SMALL, {"ties": True, "mask": "none"})]
HARD_EDGES = [
    ("mask removes every row's largest score", HARD_MEDIUM, {"mask": "drop_max"}),
    ("ties and a mask", HARD_MEDIUM, {"ties": True}),
    ("one allowed position per row", HARD_SMALL, {"mask": "single"}),
    ("L=1", dict(N=3, L=1, Dk=2, Dv=2), {}),
]
# Dk=1: integer scores K_l q of one feature, many ties (first allowed maximum, as in the ties cases).
HARD_SIZE_ONE = size_one_cases(HARD_SMALL, ["N", "Dk", "Dv"])
MHA_SMALL, MHA_MEDIUM = dict(N=2, L=4, E=8, heads=2), dict(N=4, L=6, E=12, heads=4)
MHA_PUBLIC = [("no mask (mask=None)", MHA_SMALL, NO_MASK),
              ("4 heads of width 2", dict(N=2, L=4, E=8, heads=4), {})]
MHA_EDGES = [
    ("1 head", dict(N=3, L=5, E=6, heads=1), {}),
    ("mask removes every row's largest score", MHA_SMALL, {"mask": "drop_max"}),
    ("one allowed position per row", dict(N=3, L=5, E=6, heads=3), {"mask": "single"}),
    ("large scores (+1e3 on every score of most rows)", MHA_SMALL, {"shift": 1e3}),
    ("a masked position scores 1e3 above the rest (most rows)", MHA_SMALL, {"spike": 1e3}),
    ("8 heads of width 1, no mask", dict(N=2, L=3, E=8, heads=8), NO_MASK),
]
# The heads divide E: E=1 only with heads=1 (one head of width 1), a case of its own.
MHA_SIZE_ONE = size_one_cases(dict(N=3, L=4, E=6, heads=2), ["N", "L", ("E", "heads")])

# The vectorisation check's inputs (speed.py): a batch large enough that a Python loop over it takes well
# over 10x the reference (28x for dot-product attention written row by row). Hard attention too: a loop over
# the batch to pick each row's position is a likely mistake.
DOT_SPEED = dict(N=128, L=8, Dk=16, Dv=16)
ADD_SPEED = dict(N=128, L=8, Dq=16, Dk=16, Dv=16, A=16)
MHA_SPEED = dict(N=128, L=8, E=16, heads=2)

# The softmax backward cancels (its gradient of the scores sums to 0 over l), which costs float32
# digits: over 400 fresh seeds the reference reached 6.5e-4 (additive), 2.7e-4 (multi-head) and
# 1.1e-4 (dot) relative error on the float32 medium cases, against 1e-7 and less in float64.
BACKWARD_RTOL = {torch.float32: 1e-2}

FUNCTIONS = [
    GradedFunction(
        name="dot_attention_forward", file=FILE, points=2,
        args=DOT_ARGS, returns=("context", "weights", CACHE),
        make=make_dot, oracle=dot_attention_forward_oracle,
        cases=_cases(DOT_SMALL, DOT_MEDIUM, DOT_EDGES, DOT_PUBLIC, BIG_SCORES) + DOT_SIZE_ONE,
        mistakes=_dot_forward_mistakes(), speed=DOT_SPEED),
    GradedFunction(
        name="dot_attention_backward", file=FILE, points=3, forward="dot_attention_forward",
        args=("dcontext", CACHE), returns=("dq", "dK", "dV"),
        make=backward_maker(make_dot), oracle=dot_attention_backward_oracle,
        cases=_cases(DOT_SMALL, DOT_MEDIUM, DOT_EDGES, DOT_PUBLIC, BIG_SCORES) + DOT_SIZE_ONE,
        mistakes=_dot_backward_mistakes(), rtol=BACKWARD_RTOL, speed=DOT_SPEED),
    GradedFunction(
        name="additive_attention_forward", file=FILE, points=2,
        args=ADD_ARGS, returns=("context", "weights", CACHE),
        make=make_additive, oracle=additive_attention_forward_oracle,
        cases=_cases(ADD_SMALL, ADD_MEDIUM, ADD_EDGES, ADD_PUBLIC, BIG_SCORES) + ADD_SIZE_ONE,
        mistakes=_additive_forward_mistakes(), speed=ADD_SPEED),
    GradedFunction(
        name="additive_attention_backward", file=FILE, points=4, forward="additive_attention_forward",
        args=("dcontext", CACHE), returns=("dq", "dK", "dV", "dWq", "dWk", "dv"),
        make=backward_maker(make_additive), oracle=additive_attention_backward_oracle,
        cases=_cases(ADD_SMALL, ADD_MEDIUM, ADD_EDGES, ADD_PUBLIC, BIG_SCORES) + ADD_SIZE_ONE,
        mistakes=_additive_backward_mistakes(), rtol=BACKWARD_RTOL, speed=ADD_SPEED),
    GradedFunction(
        name="local_attention_mask", file=FILE, points=1,
        args=("L", "center", "window"), returns=("mask",),
        make=make_local, oracle=local_attention_mask_oracle,
        cases=standard_cases(LOCAL_SMALL, LOCAL_MEDIUM, LOCAL_EDGES, float32_small=False) + LOCAL_SIZE_ONE,
        mistakes=LOCAL_MISTAKES),
    GradedFunction(
        name="hard_attention_forward", file=FILE, points=1,
        args=DOT_ARGS, returns=("context", "index", CACHE),
        make=make_hard, oracle=hard_attention_forward_oracle,
        cases=_cases(HARD_SMALL, HARD_MEDIUM, HARD_EDGES, HARD_PUBLIC) + HARD_SIZE_ONE,
        mistakes=HARD_MISTAKES, speed=DOT_SPEED),
    GradedFunction(
        name="hard_attention_backward", file=FILE, points=1, forward="hard_attention_forward",
        args=("dcontext", CACHE), returns=("dq", "dK", "dV"),
        make=backward_maker(make_hard), oracle=hard_attention_backward_oracle,
        cases=_cases(HARD_SMALL, HARD_MEDIUM, HARD_EDGES, HARD_PUBLIC) + HARD_SIZE_ONE,
        mistakes=HARD_BACKWARD_MISTAKES, speed=DOT_SPEED),
    GradedFunction(
        name="multihead_attention_forward", file=FILE, points=3,
        args=MHA_ARGS, returns=("out", "weights", CACHE),
        make=make_mha, oracle=multihead_attention_forward_oracle,
        cases=_cases(MHA_SMALL, MHA_MEDIUM, MHA_EDGES, MHA_PUBLIC, BIG_SCORES) + MHA_SIZE_ONE,
        mistakes=MHA_FORWARD_MISTAKES, speed=MHA_SPEED),
    GradedFunction(
        name="multihead_attention_backward", file=FILE, points=5, forward="multihead_attention_forward",
        args=("dout", CACHE), returns=("dq", "dK", "dV", "dWq", "dWk", "dWv", "dWo"),
        make=backward_maker(make_mha), oracle=multihead_attention_backward_oracle,
        cases=_cases(MHA_SMALL, MHA_MEDIUM, MHA_EDGES, MHA_PUBLIC, BIG_SCORES, MHA_SATURATED_RTOL) + MHA_SIZE_ONE,
        mistakes=MHA_BACKWARD_MISTAKES, rtol=BACKWARD_RTOL, speed=MHA_SPEED),
]
