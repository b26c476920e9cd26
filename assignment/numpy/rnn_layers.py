"""Vanilla RNN layers, word embeddings and the temporal output layers.

Everything here is written with plain NumPy array operations and hand-written backward passes:
no torch operator, and no autograd by any library (JAX, autograd, ...): the grader gives a function
that uses either 0 points.

Conventions (see the handout):
- N batch size, T sequence length, D input size, H hidden size, V vocabulary size.
- Batch first: x has shape (N, T, D); weights multiply from the right: x @ Wx.
- Every function works for float32 and float64, and returns arrays of the input's dtype:
  float32 in, float32 out. New arrays take it explicitly (`dtype=x.dtype`, `np.zeros_like`):
  np.zeros and np.empty default to float64.
- Integer index arrays are int64; masks are bool.
- Inputs are never modified in place.
- `cache` is whatever the forward pass hands to its backward pass.
"""
import numpy as np


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """One time step of a vanilla RNN with a tanh nonlinearity.

        next_h = tanh(x @ Wx + prev_h @ Wh + b)

    Inputs:
    - x: Input data for this time step, of shape (N, D).
    - prev_h: Hidden state from the previous time step, of shape (N, H).
    - Wx: Input-to-hidden weights, of shape (D, H).
    - Wh: Hidden-to-hidden weights, of shape (H, H).
    - b: Bias, of shape (H,).

    Returns a tuple of:
    - next_h: Next hidden state, of shape (N, H).
    - cache: Values needed by rnn_step_backward.
    """
    raise NotImplementedError("rnn_step_forward: not implemented yet")
    # Your code replaces the line above and ends with:
    # return next_h, cache


def rnn_step_backward(dnext_h, cache):
    """Backward pass for one time step of a vanilla RNN.

    Inputs:
    - dnext_h: Gradient of the loss with respect to next_h, of shape (N, H).
    - cache: Cache object from rnn_step_forward.

    Returns a tuple of:
    - dx: Gradient of the input data, of shape (N, D).
    - dprev_h: Gradient of the previous hidden state, of shape (N, H).
    - dWx: Gradient of the input-to-hidden weights, of shape (D, H).
    - dWh: Gradient of the hidden-to-hidden weights, of shape (H, H).
    - db: Gradient of the bias, of shape (H,).

    Hint: d tanh(a) / da = 1 - tanh(a)^2, and you already have tanh(a) = next_h.
    """
    raise NotImplementedError("rnn_step_backward: not implemented yet")
    # Your code replaces the line above and ends with:
    # return dx, dprev_h, dWx, dWh, db


def rnn_forward(x, h0, Wx, Wh, b):
    """Run a vanilla RNN forward over a whole sequence.

    The RNN reads x[:, 0], x[:, 1], ..., x[:, T-1] in order, starting from the hidden state h0;
    h[:, t] is the hidden state after reading x[:, t]. Loop over time only: every step works on
    the whole batch at once.

    Inputs:
    - x: Input data for the entire sequence, of shape (N, T, D).
    - h0: Initial hidden state, of shape (N, H).
    - Wx: Input-to-hidden weights, of shape (D, H).
    - Wh: Hidden-to-hidden weights, of shape (H, H).
    - b: Bias, of shape (H,).

    Returns a tuple of:
    - h: Hidden states for the entire sequence, of shape (N, T, H).
    - cache: Values needed by rnn_backward.
    """
    raise NotImplementedError("rnn_forward: not implemented yet")
    # Your code replaces the line above and ends with:
    # return h, cache


def rnn_backward(dh, cache):
    """Backward pass of a vanilla RNN over a whole sequence (backpropagation through time).

    Inputs:
    - dh: Upstream gradients of all hidden states, of shape (N, T, H). dh[:, t] is the gradient
      that reaches h[:, t] from the layers above (the output layer), NOT including the gradient
      that flows back into h[:, t] from step t+1: your loop has to add that part itself.
    - cache: Cache object from rnn_forward.

    Returns a tuple of:
    - dx: Gradient of the inputs, of shape (N, T, D).
    - dh0: Gradient of the initial hidden state, of shape (N, H).
    - dWx: Gradient of the input-to-hidden weights, of shape (D, H).
    - dWh: Gradient of the hidden-to-hidden weights, of shape (H, H).
    - db: Gradient of the bias, of shape (H,).
    """
    raise NotImplementedError("rnn_backward: not implemented yet")
    # Your code replaces the line above and ends with:
    # return dx, dh0, dWx, dWh, db


def birnn_forward(x, h0_f, h0_b, Wx_f, Wh_f, b_f, Wx_b, Wh_b, b_b):
    """Bidirectional vanilla RNN over a whole sequence.

    The forward RNN reads x from t = 0 up to T-1 starting at h0_f; the backward RNN reads x from
    t = T-1 down to 0 starting at h0_b. The output at time t concatenates both states at t:
    h[:, t, :H] is the forward RNN's state after reading x[:, t], and h[:, t, H:] is the backward
    RNN's state after reading x[:, t] (the layout of
    torch.nn.RNN(bidirectional=True, batch_first=True)).

    Inputs:
    - x: Input data, of shape (N, T, D).
    - h0_f, h0_b: Initial hidden states of the forward and backward RNNs, each (N, H).
    - Wx_f, Wx_b: Input-to-hidden weights, each (D, H).
    - Wh_f, Wh_b: Hidden-to-hidden weights, each (H, H).
    - b_f, b_b: Biases, each (H,).

    Returns a tuple of:
    - h: Concatenated hidden states, of shape (N, T, 2H).
    - cache: Values needed by birnn_backward.
    """
    raise NotImplementedError("birnn_forward: not implemented yet")
    # Your code replaces the line above and ends with:
    # return h, cache


def birnn_backward(dh, cache):
    """Backward pass of the bidirectional RNN.

    Inputs:
    - dh: Upstream gradients of the concatenated states, of shape (N, T, 2H).
    - cache: Cache object from birnn_forward.

    Returns a tuple of:
    - dx: Gradient of the inputs, of shape (N, T, D).
    - dh0_f, dh0_b: Gradients of the two initial hidden states, each (N, H).
    - dWx_f, dWh_f, db_f: Gradients of the forward RNN's parameters.
    - dWx_b, dWh_b, db_b: Gradients of the backward RNN's parameters.
    """
    raise NotImplementedError("birnn_backward: not implemented yet")
    # Your code replaces the line above and ends with:
    # return dx, dh0_f, dh0_b, dWx_f, dWh_f, db_f, dWx_b, dWh_b, db_b


def word_embedding_forward(x, W):
    """Word embeddings: look up the vector of every word index.

    Inputs:
    - x: Integer (int64) array of shape (N, T) giving word indices, each in [0, V).
    - W: Word vectors, of shape (V, D).

    Returns a tuple of:
    - out: Embedded words, of shape (N, T, D): out[n, t] = W[x[n, t]].
    - cache: Values needed by word_embedding_backward.
    """
    raise NotImplementedError("word_embedding_forward: not implemented yet")
    # Your code replaces the line above and ends with:
    # return out, cache


def word_embedding_backward(dout, cache):
    """Backward pass for word embeddings.

    A word that occurs several times in x receives the sum of the gradients of all its
    occurrences: accumulate, do not overwrite.

    Inputs:
    - dout: Upstream gradients, of shape (N, T, D).
    - cache: Cache object from word_embedding_forward.

    Returns:
    - dW: Gradient of the word vectors, of shape (V, D).
    """
    raise NotImplementedError("word_embedding_backward: not implemented yet")
    # Your code replaces the line above and ends with:
    # return dW


def temporal_affine_forward(x, w, b):
    """Affine layer applied at every time step (e.g. hidden states to vocabulary scores).

    Inputs:
    - x: Input data, of shape (N, T, D).
    - w: Weights, of shape (D, M).
    - b: Biases, of shape (M,).

    Returns a tuple of:
    - out: Output data, of shape (N, T, M): out[n, t] = x[n, t] @ w + b.
    - cache: Values needed by temporal_affine_backward.
    """
    raise NotImplementedError("temporal_affine_forward: not implemented yet")
    # Your code replaces the line above and ends with:
    # return out, cache


def temporal_affine_backward(dout, cache):
    """Backward pass for the temporal affine layer.

    Inputs:
    - dout: Upstream gradients, of shape (N, T, M).
    - cache: Cache object from temporal_affine_forward.

    Returns a tuple of:
    - dx: Gradient of the input, of shape (N, T, D).
    - dw: Gradient of the weights, of shape (D, M).
    - db: Gradient of the biases, of shape (M,).
    """
    raise NotImplementedError("temporal_affine_backward: not implemented yet")
    # Your code replaces the line above and ends with:
    # return dx, dw, db


def temporal_softmax_loss(x, y, mask):
    """Softmax loss summed over time and averaged over the batch, with a mask.

        loss = -(1/N) * sum_{n,t} mask[n,t] * log softmax(x[n,t])[y[n,t]]

    The mask says which time steps count (False for padding after the end of a sentence).
    The loss must stay finite and exact for very large scores: shift the scores by their
    maximum before np.exp (a stable log-sum-exp).

    Inputs:
    - x: Scores, of shape (N, T, V).
    - y: Ground-truth indices (int64), of shape (N, T), each in [0, V).
    - mask: Boolean array of shape (N, T); mask[n, t] says whether x[n, t] counts.

    Returns a tuple of:
    - loss: The loss, a 0-dim array or NumPy scalar of x's dtype (a Python float is accepted too).
    - dx: Gradient of the loss with respect to the scores, of shape (N, T, V).
    """
    raise NotImplementedError("temporal_softmax_loss: not implemented yet")
    # Your code replaces the line above and ends with:
    # return loss, dx
