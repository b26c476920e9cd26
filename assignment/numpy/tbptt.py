"""Gradient clipping and truncated backpropagation through time (TBPTT).

The model is a word-level RNN language model built from your rnn_layers.py:

    scores = temporal_affine(rnn(word_embedding(x), h), W_out, b_out)      (N, T, V)
    loss   = temporal_softmax_loss(scores, y, mask=all True)

with parameters params = {"W_embed" (V, D), "Wx" (D, H), "Wh" (H, H), "b" (H,),
"W_out" (H, V), "b_out" (V,)}. Truncated BPTT cuts a long sequence into chunks of k time steps:
each chunk starts from the hidden state the previous chunk ended with, but that state is
treated as a constant, so no gradient flows back into an earlier chunk.

Everything is written with your own layers and plain NumPy array operations: no torch, and no
autograd by any library (JAX, autograd, ...).

Conventions (see the handout):
- N batch size, T sequence length, V vocabulary size, D word-vector size, H hidden size.
- Every function works for float32 and float64 and returns arrays of the parameters' dtype
  (float32 in, float32 out): create new arrays with `dtype=p.dtype` or `np.zeros_like`, since
  np.zeros defaults to float64. Integer index arrays (x, y) are int64.
- Inputs are never modified in place: not the arrays, and not the dicts that hold them
  (no `+=` on an argument).
"""
import numpy as np

from rnn_layers import (rnn_backward, rnn_forward, temporal_affine_backward, temporal_affine_forward,
                        temporal_softmax_loss, word_embedding_backward, word_embedding_forward)


def clip_grad_norm(grads, max_norm):
    """Clip gradients by their total norm (the semantics of torch.nn.utils.clip_grad_norm_).

        total_norm = sqrt(sum over all arrays g of sum(g ** 2))

    If total_norm > max_norm, every array is multiplied by max_norm / (total_norm + 1e-6);
    otherwise every array is left as it is. One factor for all the arrays together: the
    direction of the whole gradient is kept, only its length shrinks.

    Inputs:
    - grads: Dict mapping a parameter name to its gradient (arrays of any shapes).
    - max_norm: Largest allowed total norm, a positive Python float.

    Returns a tuple of:
    - clipped: A new dict with the same keys, holding the clipped gradients (new arrays:
      the arrays of grads are not modified).
    - total_norm: The total norm before clipping, a 0-dim array (or NumPy scalar) of the
      gradients' dtype.
    """
    raise NotImplementedError("clip_grad_norm: not implemented yet")
    # Your code replaces the line above and ends with:
    # return clipped, total_norm


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
    - loss: Sum of the chunks' losses, a 0-dim array (or NumPy scalar) of the parameters' dtype.
    - grads: Dict with the keys of params: the sum over chunks of each chunk's gradient.
    - h_last: Hidden state after the last time step, of shape (N, H).
    """
    raise NotImplementedError("truncated_bptt_grads: not implemented yet")
    # Your code replaces the line above and ends with:
    # return loss, grads, h_last


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
      step (new arrays: params and its arrays are not modified).
    - losses: The chunks' losses, each computed before that chunk's update, a 1-D array of the
      parameters' dtype with one entry per chunk.
    - h_last: Hidden state after the last time step, of shape (N, H).

    Hint: truncated_bptt_grads called on one chunk's slice of x and y gives that chunk's loss,
    gradients and final hidden state.
    """
    raise NotImplementedError("tbptt_train: not implemented yet")
    # Your code replaces the line above and ends with:
    # return new_params, losses, h_last
