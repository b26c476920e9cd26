"""Realistic mistakes in attention.py (each an edit of the reference solution)."""
from . import Bug

F = "attention.py"
DOT = ["dot_attention_forward", "dot_attention_backward"]  # the backward runs on the forward's cache
ADD = ["additive_attention_forward", "additive_attention_backward"]
HARD = ["hard_attention_forward", "hard_attention_backward"]
MHA = ["multihead_attention_forward", "multihead_attention_backward"]

DOT_SCORES = "scores = (K @ q.unsqueeze(2)).squeeze(2) / math.sqrt(Dk)  # (N, L)"
DOT_MASK_SOFTMAX = ('    if mask is not None:\n'
                    '        scores = scores.masked_fill(~mask, float("-inf"))  # a new tensor: exp(-inf) = 0\n'
                    '    weights = torch.softmax(scores, dim=1)  # (N, L), stable: shifts by the row max\n')
DOT_SOFTMAX_BWD = ("dscores = weights * (dweights - (weights * dweights).sum(dim=1, keepdim=True))"
                   "  # (N, L), softmax backward")
ADD_MASK_SOFTMAX = ('    if mask is not None:\n'
                    '        scores = scores.masked_fill(~mask, float("-inf"))  # masked positions get weight 0\n'
                    '    weights = torch.softmax(scores, dim=1)  # (N, L), over the L positions\n')
LOCAL = "mask = (positions.unsqueeze(0) - center.unsqueeze(1)).abs() <= window  # (N, L)"
MHA_MASK_SOFTMAX = ('    if mask is not None:\n'
                    '        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))  # same mask in every head\n'
                    '    weights = torch.softmax(scores, dim=2)  # (N, h, L)\n')
MHA_SCORES = "scores = (Kh @ Qh.unsqueeze(3)).squeeze(3) / math.sqrt(Dh)  # (N, h, L)"
MHA_K = "Kh = (K @ Wk).reshape(N, L, num_heads, Dh).transpose(1, 2)  # (N, h, L, Dh)"
MHA_V = "Vh = (V @ Wv).reshape(N, L, num_heads, Dh).transpose(1, 2)  # (N, h, L, Dh)"

BUGS = [
    # ---------------------------------------------------------------- dot-product attention
    Bug("dot attention: scores not scaled", F, [(DOT_SCORES, "scores = (K @ q.unsqueeze(2)).squeeze(2)  # (N, L)")],
        DOT, hint="not scaled"),
    Bug("dot attention: scores scaled by the value size", F,
        [(DOT_SCORES, "scores = (K @ q.unsqueeze(2)).squeeze(2) / math.sqrt(V.shape[2])  # (N, L)")],
        DOT, hint="sqrt(Dv)"),
    Bug("dot attention: softmax over the batch axis", F,
        [("weights = torch.softmax(scores, dim=1)  # (N, L), stable", "weights = torch.softmax(scores, dim=0)  #")],
        DOT, hint="wrong axis"),
    Bug("dot attention: mask ignored", F,
        [(DOT_MASK_SOFTMAX, "    weights = torch.softmax(scores, dim=1)\n")],
        DOT, hint="the mask is ignored"),
    Bug("dot attention: mask applied after the softmax", F,
        [(DOT_MASK_SOFTMAX, "    weights = torch.softmax(scores, dim=1)\n"
                            "    if mask is not None:\n"
                            "        weights = weights * mask\n")],
        DOT, hint="applied after the softmax"),
    Bug("dot attention: mask applied after the softmax, weights renormalised", F,
        [(DOT_MASK_SOFTMAX, "    weights = torch.softmax(scores, dim=1)\n"
                            "    if mask is not None:\n"
                            "        weights = weights * mask\n"
                            "        weights = weights / weights.sum(dim=1, keepdim=True)\n")],
        DOT, hint="renormalised"),
    Bug("dot attention: masked scores multiplied by the mask", F,
        [('scores = scores.masked_fill(~mask, float("-inf"))  # a new tensor', "scores = scores * mask  #")],
        DOT, hint="instead of -inf"),
    Bug("dot attention: softmax without the max shift", F,
        [("weights = torch.softmax(scores, dim=1)  # (N, L), stable: shifts by the row max",
          "weights = torch.exp(scores) / torch.exp(scores).sum(dim=1, keepdim=True)")],
        DOT, hint="exp overflowed"),
    Bug("dot attention: mask=None not handled", F,
        [('    if mask is not None:\n        scores = scores.masked_fill(~mask, float("-inf"))  # a new tensor',
          '    scores = scores.masked_fill(~mask, float("-inf"))  # a new tensor')],
        DOT, hint="NoneType"),
    Bug("dot attention backward: softmax backward without its subtraction term", F,
        [(DOT_SOFTMAX_BWD, "dscores = weights * dweights")],
        ["dot_attention_backward"], hint="second term"),
    Bug("dot attention backward: the 1/sqrt(Dk) scale forgotten", F,
        [("    dscores = dscores / math.sqrt(Dk)  # through the 1/sqrt(Dk) scale\n", "")],
        ["dot_attention_backward"], hint="missing the 1/sqrt(Dk)"),
    # ---------------------------------------------------------------- additive attention
    Bug("additive attention: mask ignored", F, [(ADD_MASK_SOFTMAX, "    weights = torch.softmax(scores, dim=1)\n")],
        ADD, hint="the mask is ignored"),
    Bug("additive attention: mask applied after the softmax, weights renormalised", F,
        [(ADD_MASK_SOFTMAX, "    weights = torch.softmax(scores, dim=1)\n"
                            "    if mask is not None:\n"
                            "        weights = weights * mask / (weights * mask).sum(dim=1, keepdim=True)\n")],
        ADD, hint="renormalised"),
    Bug("additive attention: softmax without the max shift", F,
        [("weights = torch.softmax(scores, dim=1)  # (N, L), over the L positions",
          "weights = scores.exp() / scores.exp().sum(dim=1, keepdim=True)")],
        ADD, hint="overflows"),
    Bug("additive attention backward: softmax backward without its subtraction term", F,
        [("dscores = weights * (dweights - (weights * dweights).sum(dim=1, keepdim=True))  # (N, L), through",
          "dscores = weights * dweights  #")],
        ["additive_attention_backward"], hint="second term"),
    Bug("additive attention backward: tanh derivative skipped", F,
        [("dpre = dscores.unsqueeze(2) * v * (1 - hidden * hidden)", "dpre = dscores.unsqueeze(2) * v")],
        ["additive_attention_backward"], hint="derivative of tanh"),
    Bug("additive attention backward: gradient of q Wq averaged over the positions", F,
        [("dqWq = dpre.sum(dim=1)", "dqWq = dpre.mean(dim=1)")],
        ["additive_attention_backward"], hint="not the mean"),
    # ---------------------------------------------------------------- local attention mask
    Bug("local attention mask: window exclusive", F,
        [(LOCAL, "mask = (positions.unsqueeze(0) - center.unsqueeze(1)).abs() < window  # (N, L)")],
        ["local_attention_mask"], hint="inclusive"),
    Bug("local attention mask: window on one side only", F,
        [(LOCAL, "mask = positions.unsqueeze(0) - center.unsqueeze(1) <= window  # (N, L)")],
        ["local_attention_mask"], hint="both sides"),
    Bug("local attention mask: Python slice with a negative start", F,
        [("    positions = torch.arange(L, device=center.device)  # (L,)\n    " + LOCAL + "\n",
          "    mask = torch.zeros((center.shape[0], L), dtype=torch.bool, device=center.device)\n"
          "    for n in range(center.shape[0]):\n"
          "        c = int(center[n])\n"
          "        mask[n, c - window:c + window + 1] = True\n")],
        ["local_attention_mask"], hint="negative"),
    # ---------------------------------------------------------------- hard attention
    Bug("hard attention: mask ignored", F,
        [('    if mask is not None:\n'
          '        scores = scores.masked_fill(~mask, float("-inf"))  # a masked position is never chosen\n', "")],
        HARD, hint="masked one"),
    Bug("hard attention: last index on ties", F,
        [("index = torch.argmax(scores, dim=1)", "index = scores.shape[1] - 1 - torch.argmax(scores.flip(1), dim=1)")],
        HARD, hint="lowest position"),
    Bug("hard attention backward: dV at every position", F,
        [("dV[rows, index] = dcontext", "dV = dV + dcontext.unsqueeze(1)")],
        ["hard_attention_backward"], hint="every position"),
    # ---------------------------------------------------------------- multi-head attention
    Bug("multihead attention: scores not scaled", F, [(MHA_SCORES, "scores = (Kh @ Qh.unsqueeze(3)).squeeze(3)  # (N, h, L)")],
        MHA, hint="not scaled"),
    Bug("multihead attention: scaled by the model width E", F,
        [(MHA_SCORES, "scores = (Kh @ Qh.unsqueeze(3)).squeeze(3) / math.sqrt(E)  # (N, h, L)")],
        MHA, hint="the model width"),
    Bug("multihead attention: softmax over the heads", F,
        [("weights = torch.softmax(scores, dim=2)  # (N, h, L)", "weights = torch.softmax(scores, dim=1)")],
        MHA, hint="heads axis"),
    Bug("multihead attention: mask ignored", F, [(MHA_MASK_SOFTMAX, "    weights = torch.softmax(scores, dim=2)\n")],
        MHA, hint="the mask is ignored"),
    Bug("multihead attention: mask applied after the softmax", F,
        [(MHA_MASK_SOFTMAX, "    weights = torch.softmax(scores, dim=2)\n"
                            "    if mask is not None:\n"
                            "        weights = weights * mask.unsqueeze(1)\n")],
        MHA, hint="applied after the softmax"),
    Bug("multihead attention: mask applied after the softmax, weights renormalised", F,
        [(MHA_MASK_SOFTMAX, "    weights = torch.softmax(scores, dim=2)\n"
                            "    if mask is not None:\n"
                            "        weights = weights * mask.unsqueeze(1)\n"
                            "        weights = weights / weights.sum(dim=2, keepdim=True)\n")],
        MHA, hint="renormalised"),
    Bug("multihead attention: softmax without the max shift", F,
        [("weights = torch.softmax(scores, dim=2)  # (N, h, L)",
          "weights = torch.exp(scores) / torch.exp(scores).sum(dim=2, keepdim=True)")],
        MHA, hint="overflows"),
    Bug("multihead attention: heads interleaved instead of contiguous blocks", F,
        [("Qh = (q @ Wq).reshape(N, num_heads, Dh)", "Qh = (q @ Wq).reshape(N, Dh, num_heads).transpose(1, 2)"),
         (MHA_K, "Kh = (K @ Wk).reshape(N, L, Dh, num_heads).permute(0, 3, 1, 2)"),
         (MHA_V, "Vh = (V @ Wv).reshape(N, L, Dh, num_heads).permute(0, 3, 1, 2)"),
         ("concat = heads.reshape(N, E)", "concat = heads.transpose(1, 2).reshape(N, E)")],
        MHA, hint="interleaved"),
    Bug("multihead attention: keys and values reshaped to (N, h, L, Dh) without a transpose", F,
        [(MHA_K, "Kh = (K @ Wk).reshape(N, num_heads, L, Dh)"), (MHA_V, "Vh = (V @ Wv).reshape(N, num_heads, L, Dh)")],
        MHA, hint="mixes positions and heads"),
    Bug("multihead attention backward: softmax backward without its subtraction term", F,
        [("dscores = weights * (dweights - (weights * dweights).sum(dim=2, keepdim=True))", "dscores = weights * (dweights)")],
        ["multihead_attention_backward"], hint="second term"),
    Bug("multihead attention backward: dWo transposed", F,
        [("dWo = concat.T @ dout  # (E, E)", "dWo = dout.T @ concat  # (E, E)")],
        ["multihead_attention_backward"], hint="transpose of the right gradient"),
]
