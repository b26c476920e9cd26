"""Gradient clipping and truncated backpropagation through time (TBPTT).

The model is a word-level RNN language model built from your rnn_layers.py:

    scores = temporal_affine(rnn(word_embedding(x), h), W_out, b_out)      (N, T, V)
    loss   = temporal_softmax_loss(scores, y, mask=all True)

with parameters params = {"W_embed" (V, D), "Wx" (D, H), "Wh" (H, H), "b" (H,),
"W_out" (H, V), "b_out" (V,)}. Truncated BPTT cuts a long sequence into chunks of k time steps:
each chunk starts from the hidden state the previous chunk ended with, but that state is
treated as a constant, so no gradient flows back into an earlier chunk.

Everything is written with your own layers and plain PyTorch tensor operations: no autograd
and no `torch.nn.utils.clip_grad_norm_`, `torch.nn.RNN`, `F.embedding` or `F.cross_entropy`.

Conventions (see the handout):
- N batch size, T sequence length, V vocabulary size, D word-vector size, H hidden size.
- Every function works for float32 and float64 on any device, and returns tensors of the
  parameters' dtype on their device.
- Inputs are never modified in place: not the tensors, and not the dicts that hold them.
"""
import torch

from rnn_layers import (rnn_backward, rnn_forward, temporal_affine_backward, temporal_affine_forward,
                        temporal_softmax_loss, word_embedding_backward, word_embedding_forward)


def clip_grad_norm(grads, max_norm):
    """Clip gradients by their total norm (the semantics of torch.nn.utils.clip_grad_norm_).

        total_norm = sqrt(sum over all tensors g of sum(g ** 2))

    If total_norm > max_norm, every tensor is multiplied by max_norm / (total_norm + 1e-6);
    otherwise every tensor is left as it is. One factor for all the tensors together: the
    direction of the whole gradient is kept, only its length shrinks.

    Inputs:
    - grads: Dict mapping a parameter name to its gradient (tensors of any shapes).
    - max_norm: Largest allowed total norm, a positive Python float.

    Returns a tuple of:
    - clipped: A new dict with the same keys, holding the clipped gradients (new tensors:
      the tensors of grads are not modified).
    - total_norm: The total norm before clipping, a 0-dim tensor.
    """
    # BEGIN SOLUTION
    total_norm = torch.stack([(g * g).sum() for g in grads.values()]).sum().sqrt()  # () over all tensors
    scale = max_norm / (total_norm + 1e-6)  # () a 0-dim tensor: no sync with the GPU
    scale = torch.where(total_norm > max_norm, scale, torch.ones_like(scale))  # 1 when not too long
    clipped = {name: g * scale for name, g in grads.items()}  # new tensors
    # END SOLUTION
    return clipped, total_norm


def truncated_bptt_grads(x, y, h0, params, k):
    """Loss and gradients of the RNN language model with truncated backpropagation through time.

    Time is split into chunks [0, k), [k, 2k), ... (the last chunk may be shorter). Each chunk
    runs forward from the hidden state the previous chunk ended with (h0 for the first one) and
    is backpropagated on its own: the carried state is a constant, so the gradient that
    reaches a chunk's initial state is dropped. The chunk's loss is temporal_softmax_loss with
    an all-true mask (summed over the chunk's steps, averaged over the batch).

    Inputs:
    - x: Input word indices (int64), of shape (N, T).
    - y: Target word indices (int64), of shape (N, T); y[:, t] is the word to predict at t.
    - h0: Initial hidden state, of shape (N, H).
    - params: Dict with "W_embed" (V, D), "Wx" (D, H), "Wh" (H, H), "b" (H,), "W_out" (H, V)
      and "b_out" (V,).
    - k: Chunk length in time steps, a positive Python int.

    Returns a tuple of:
    - loss: Sum of the chunks' losses, a 0-dim tensor.
    - grads: Dict with the keys of params: the sum over chunks of each chunk's gradient.
    - h_last: Hidden state after the last time step, of shape (N, H).
    """
    # BEGIN SOLUTION
    T = x.shape[1]
    mask = torch.ones(x.shape, dtype=torch.bool, device=x.device)  # (N, T) every step counts
    loss = params["W_out"].new_zeros(())
    grads = {name: torch.zeros_like(p) for name, p in params.items()}
    h = h0  # the carried state
    for start in range(0, T, k):  # chunk [start, start + k); the last one may be shorter
        xc, yc, mc = x[:, start:start + k], y[:, start:start + k], mask[:, start:start + k]  # (N, k')
        emb, emb_cache = word_embedding_forward(xc, params["W_embed"])  # (N, k', D)
        hs, rnn_cache = rnn_forward(emb, h, params["Wx"], params["Wh"], params["b"])  # (N, k', H)
        scores, affine_cache = temporal_affine_forward(hs, params["W_out"], params["b_out"])  # (N, k', V)
        chunk_loss, dscores = temporal_softmax_loss(scores, yc, mc)
        dhs, dW_out, db_out = temporal_affine_backward(dscores, affine_cache)  # (N, k', H)
        demb, _, dWx, dWh, db = rnn_backward(dhs, rnn_cache)  # the carried state's gradient is dropped
        dW_embed = word_embedding_backward(demb, emb_cache)  # (V, D)
        loss = loss + chunk_loss
        chunk_grads = {"W_embed": dW_embed, "Wx": dWx, "Wh": dWh, "b": db, "W_out": dW_out, "b_out": db_out}
        grads = {name: grads[name] + chunk_grads[name] for name in grads}
        h = hs[:, -1]  # (N, H) carried into the next chunk as a plain value
    h_last = h
    # END SOLUTION
    return loss, grads, h_last


def tbptt_train(x, y, h0, params, k, lr, max_norm):
    """Train the RNN language model over one long sequence with truncated BPTT and SGD.

    The same chunks as truncated_bptt_grads, but the parameters change between chunks: for each
    chunk in order, compute its loss and gradients (starting from the carried hidden state,
    with the current parameters), clip that chunk's gradients with clip_grad_norm, and take
    one SGD step p <- p - lr * g before the next chunk runs.

    Inputs:
    - x, y, h0, params, k: As in truncated_bptt_grads.
    - lr: Learning rate, a Python float.
    - max_norm: Clipping threshold for clip_grad_norm, a Python float.

    Returns a tuple of:
    - new_params: A new dict with the keys of params holding the parameters after the last
      step (new tensors: params and its tensors are not modified).
    - losses: The chunks' losses, each computed before that chunk's update, a 1-D tensor with
      one entry per chunk.
    - h_last: Hidden state after the last time step, of shape (N, H).

    Hint: truncated_bptt_grads called on one chunk's slice of x and y gives that chunk's loss,
    gradients and final hidden state.
    """
    # BEGIN SOLUTION
    T = x.shape[1]
    h = h0
    losses = []
    for start in range(0, T, k):  # one chunk, then one SGD step
        xc, yc = x[:, start:start + k], y[:, start:start + k]  # (N, k')
        loss, grads, h = truncated_bptt_grads(xc, yc, h, params, k)  # a single chunk
        clipped, _ = clip_grad_norm(grads, max_norm)
        params = {name: p - lr * clipped[name] for name, p in params.items()}  # a new dict of new tensors
        losses.append(loss)
    new_params = params
    losses = torch.stack(losses)  # (number of chunks,)
    h_last = h
    # END SOLUTION
    return new_params, losses, h_last
