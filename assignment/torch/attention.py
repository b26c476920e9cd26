"""Encoder-decoder attention for one decoder step: dot-product, additive, local, hard, multi-head.

At decoder step t the decoder's state h_d[t-1] is the query q; the encoder states h_e[1:L] are
the keys K (and, here, separately the values V). An attention head scores every encoder
position, a softmax over the L positions turns the scores into weights, and the context vector
handed to the decoder is the weighted sum of the values:

    a_l = score(q, K_l)                        (N, L)
    w   = softmax(a) over l = 1..L             (N, L)   masked positions get exactly 0
    c   = sum_l w_l V_l                        (N, Dv)

Everything here is written with plain PyTorch tensor operations and hand-written backward
passes: no autograd (`.backward()`, `torch.autograd`, `requires_grad`) and no library layer that
does the work (`F.scaled_dot_product_attention`, `nn.MultiheadAttention`,
`F.multi_head_attention_forward`). `torch.softmax` is fine.

Conventions (see the handout):
- N batch size, L encoder length, Dq query size, Dk key size, Dv value size, A size of the
  additive head's hidden layer, E model width of multi-head attention.
- Batch first; weights multiply from the right: q @ Wq.
- mask (N, L) bool, optional (None means every position is allowed): True where attending is
  allowed. Every row has at least one True. Masked positions get exactly zero weight: set
  their scores to -inf before the softmax (softmax of -inf is exactly 0).
- Every function works for float32 and float64 on any device, and returns tensors of the
  input's dtype on the input's device. Inputs are never modified in place.
- `cache` is whatever the forward pass hands to its backward pass.
"""
import math

import torch


def dot_attention_forward(q, K, V, mask=None):
    """Scaled dot-product attention of one query over L encoder positions.

        a_l = K_l . q / sqrt(Dk)
        w = softmax(a) over the allowed positions l (masked positions get weight 0)
        context = sum_l w_l V_l

    Inputs:
    - q: Queries (the decoder states), of shape (N, Dk).
    - K: Keys (the encoder states), of shape (N, L, Dk).
    - V: Values, of shape (N, L, Dv).
    - mask: Optional boolean array of shape (N, L), True where attending is allowed;
      None means every position is allowed.

    Returns a tuple of:
    - context: Context vectors, of shape (N, Dv).
    - weights: Attention weights, of shape (N, L); every row sums to 1.
    - cache: Values needed by dot_attention_backward.
    """
    raise NotImplementedError("dot_attention_forward: not implemented yet")
    # Your code replaces the line above and ends with:
    # return context, weights, cache


def dot_attention_backward(dcontext, cache):
    """Backward pass of scaled dot-product attention.

    Inputs:
    - dcontext: Upstream gradient of the context vectors, of shape (N, Dv).
    - cache: Cache object from dot_attention_forward.

    Returns a tuple of:
    - dq: Gradient of the queries, of shape (N, Dk).
    - dK: Gradient of the keys, of shape (N, L, Dk).
    - dV: Gradient of the values, of shape (N, L, Dv).

    Hint: the softmax's backward pass is da_l = w_l * (dw_l - sum_j w_j dw_j). Masked positions
    have w_l = 0, so no gradient reaches them.
    """
    raise NotImplementedError("dot_attention_backward: not implemented yet")
    # Your code replaces the line above and ends with:
    # return dq, dK, dV


def additive_attention_forward(q, K, V, Wq, Wk, v, mask=None):
    """Additive attention: the lecture's learned attention head (Bahdanau-style).

    A small one-hidden-layer network scores every encoder state against the decoder state;
    its weights are shared by all L positions:

        a_l = v . tanh(q Wq + K_l Wk)
        w = softmax(a) over the allowed positions l (masked positions get weight 0)
        context = sum_l w_l V_l

    Inputs:
    - q: Queries (the decoder states), of shape (N, Dq).
    - K: Keys (the encoder states), of shape (N, L, Dk).
    - V: Values, of shape (N, L, Dv).
    - Wq: Query-to-hidden weights, of shape (Dq, A).
    - Wk: Key-to-hidden weights, of shape (Dk, A).
    - v: Hidden-to-score weights, of shape (A,).
    - mask: Optional boolean array of shape (N, L), True where attending is allowed.

    Returns a tuple of:
    - context: Context vectors, of shape (N, Dv).
    - weights: Attention weights, of shape (N, L).
    - cache: Values needed by additive_attention_backward.
    """
    raise NotImplementedError("additive_attention_forward: not implemented yet")
    # Your code replaces the line above and ends with:
    # return context, weights, cache


def additive_attention_backward(dcontext, cache):
    """Backward pass of additive attention.

    Inputs:
    - dcontext: Upstream gradient of the context vectors, of shape (N, Dv).
    - cache: Cache object from additive_attention_forward.

    Returns a tuple of:
    - dq: Gradient of the queries, of shape (N, Dq).
    - dK: Gradient of the keys, of shape (N, L, Dk).
    - dV: Gradient of the values, of shape (N, L, Dv).
    - dWq: Gradient of the query-to-hidden weights, of shape (Dq, A).
    - dWk: Gradient of the key-to-hidden weights, of shape (Dk, A).
    - dv: Gradient of the hidden-to-score weights, of shape (A,).

    Hint: q Wq is shared by all L positions, so its gradient sums over l; Wk and v are shared
    by every position and every batch element.
    """
    raise NotImplementedError("additive_attention_backward: not implemented yet")
    # Your code replaces the line above and ends with:
    # return dq, dK, dV, dWq, dWk, dv


def local_attention_mask(L, center, window):
    """Mask for local attention: only the positions within `window` of a center are allowed.

    The lecture's way to avoid attending over the whole sequence at every decoding step:
    mask[n, l] is True where abs(l - center[n]) <= window. The window is clipped at both
    ends of the sequence (positions below 0 or above L-1 do not exist).

    Inputs:
    - L: Encoder length, a Python int.
    - center: Integer (int64) array of shape (N,), the center position of every row, in [0, L).
    - window: Half-width of the window, a Python int >= 0.

    Returns:
    - mask: Boolean array of shape (N, L), on center's device.
    """
    raise NotImplementedError("local_attention_mask: not implemented yet")
    # Your code replaces the line above and ends with:
    # return mask


def hard_attention_forward(q, K, V, mask=None):
    """Hard attention: use only the single most relevant encoder state.

        index = argmax over the allowed positions l of K_l . q   (lowest l on ties)
        context = V[n, index[n]]

    Inputs:
    - q: Queries, of shape (N, Dk).
    - K: Keys, of shape (N, L, Dk).
    - V: Values, of shape (N, L, Dv).
    - mask: Optional boolean array of shape (N, L), True where attending is allowed.

    Returns a tuple of:
    - context: The chosen values, of shape (N, Dv).
    - index: Integer (int64) array of shape (N,), the chosen position of every row.
    - cache: Values needed by hard_attention_backward.
    """
    raise NotImplementedError("hard_attention_forward: not implemented yet")
    # Your code replaces the line above and ends with:
    # return context, index, cache


def hard_attention_backward(dcontext, cache):
    """Backward pass of hard attention.

    The argmax is piecewise constant, so no gradient reaches the scores: dq and dK are zeros.
    The context is V[n, index[n]], so dV routes dcontext to the chosen position of every row.

    Inputs:
    - dcontext: Upstream gradient of the context vectors, of shape (N, Dv).
    - cache: Cache object from hard_attention_forward.

    Returns a tuple of:
    - dq: Gradient of the queries, zeros of shape (N, Dk).
    - dK: Gradient of the keys, zeros of shape (N, L, Dk).
    - dV: Gradient of the values, of shape (N, L, Dv).
    """
    raise NotImplementedError("hard_attention_backward: not implemented yet")
    # Your code replaces the line above and ends with:
    # return dq, dK, dV


def multihead_attention_forward(q, K, V, Wq, Wk, Wv, Wo, num_heads, mask=None):
    """Multi-head attention of one query: num_heads scaled dot-product heads side by side.

    Project the query, keys and values, split the last axis into num_heads contiguous blocks
    of width Dh = E / num_heads (head j owns columns j*Dh ... (j+1)*Dh - 1), run scaled
    dot-product attention in every head (scale 1/sqrt(Dh), the width of one head), put the
    heads' outputs back side by side and project them:

        Q = q Wq,  K' = K Wk,  V' = V Wv                    (split into heads)
        w_j = softmax(K'_j Q_j / sqrt(Dh)),  head_j = sum_l w_j,l V'_j,l
        out = [head_1, ..., head_num_heads] Wo

    This equals F.multi_head_attention_forward with separate projection weights (their
    transposes), no biases and key_padding_mask = ~mask.

    Inputs:
    - q: Queries, of shape (N, E).
    - K: Keys, of shape (N, L, E).
    - V: Values, of shape (N, L, E).
    - Wq, Wk, Wv: Query, key and value projections, each of shape (E, E).
    - Wo: Output projection, of shape (E, E).
    - num_heads: Number of heads, a Python int dividing E.
    - mask: Optional boolean array of shape (N, L), True where attending is allowed (the same
      for every head).

    Returns a tuple of:
    - out: Output, of shape (N, E).
    - weights: Attention weights of every head, of shape (N, num_heads, L).
    - cache: Values needed by multihead_attention_backward.
    """
    raise NotImplementedError("multihead_attention_forward: not implemented yet")
    # Your code replaces the line above and ends with:
    # return out, weights, cache


def multihead_attention_backward(dout, cache):
    """Backward pass of multi-head attention.

    Inputs:
    - dout: Upstream gradient of the output, of shape (N, E).
    - cache: Cache object from multihead_attention_forward.

    Returns a tuple of:
    - dq: Gradient of the queries, of shape (N, E).
    - dK: Gradient of the keys, of shape (N, L, E).
    - dV: Gradient of the values, of shape (N, L, E).
    - dWq, dWk, dWv, dWo: Gradients of the four weight matrices, each of shape (E, E).
    """
    raise NotImplementedError("multihead_attention_backward: not implemented yet")
    # Your code replaces the line above and ends with:
    # return dq, dK, dV, dWq, dWk, dWv, dWo
