"""Realistic mistakes in the NumPy track's tbptt.py (each an edit of solutions/numpy/tbptt.py).

tbptt_train calls clip_grad_norm and truncated_bptt_grads, so a bug in either usually breaks
it too; truncated_bptt_grads is called there on one chunk at a time, so a bug that only shows
with several chunks does not.
"""
from . import Bug

F = "tbptt.py"
CLIP = ["clip_grad_norm", "tbptt_train"]  # tbptt_train calls clip_grad_norm
GRADS = ["truncated_bptt_grads", "tbptt_train"]  # tbptt_train calls truncated_bptt_grads

TOTAL_NORM = "total_norm = np.sqrt(np.stack([(g * g).sum() for g in grads.values()]).sum())  # () over all arrays"
SCALE = "scale = max_norm / (total_norm + 1e-6) if total_norm > max_norm else 1  # a Python number keeps the dtype"
CLIPPED = "clipped = {name: g * scale for name, g in grads.items()}  # new arrays"
GRADS_LOOP = "for start in range(0, T, k):  # chunk [start, start + k); the last one may be shorter"
TRAIN_LOOP = "for start in range(0, T, k):  # one chunk, then one SGD step"
CARRY = "h = hs[:, -1]  # (N, H) carried into the next chunk as a plain value"
RNN_CALL = 'hs, rnn_cache = rnn_forward(emb, h, params["Wx"], params["Wh"], params["b"])'
TRAIN_CALL = "loss, grads, h = truncated_bptt_grads(xc, yc, h, params, k)  # a single chunk"
CLIP_CALL = "clipped, _ = clip_grad_norm(grads, max_norm)"
STEP = "params = {name: p - lr * clipped[name] for name, p in params.items()}  # a new dict of new arrays"
GRADS_END = "    h_last = h\n    # END SOLUTION\n    return loss, grads, h_last"

SHARED = [  # the torch track's kinds of mistakes (tests/buggy/), in NumPy
    # ---- clip_grad_norm: the torch corpus's mistakes, in NumPy
    Bug("tbptt: clipping each array by its own norm", F,
        [(TOTAL_NORM, TOTAL_NORM + "\n"
                      "    clipped = {name: g * min(1.0, max_norm / (np.sqrt((g * g).sum()) + 1e-6)) "
                      "for name, g in grads.items()}\n    return clipped, total_norm")],
        CLIP, hint="its own norm"),
    Bug("tbptt: clipping element-wise (np.clip) instead of by norm", F,
        [(CLIPPED, "clipped = {name: np.clip(g, -max_norm, max_norm) for name, g in grads.items()}")],
        CLIP, hint="clipping by value"),
    Bug("tbptt: always scaling, even below max_norm", F,
        [(SCALE, "scale = max_norm / (total_norm + 1e-6)")], CLIP, hint="not above max_norm"),
    Bug("tbptt: clipping edits its input in place (g *= scale)", F,
        [(CLIPPED, "for g in grads.values():\n        g *= scale\n    clipped = dict(grads)")],
        ["clip_grad_norm"], hint="modified its input"),
    Bug("tbptt: total norm as the sum of the arrays' norms", F,
        [(TOTAL_NORM, "total_norm = sum(np.sqrt((g * g).sum()) for g in grads.values())")],
        CLIP, hint="sum of the"),
    Bug("tbptt: total norm not square-rooted", F,
        [(TOTAL_NORM, "total_norm = np.stack([(g * g).sum() for g in grads.values()]).sum()")],
        CLIP, hint="square root"),
    # ---- truncated_bptt_grads
    Bug("tbptt: carried state not treated as constant (full BPTT)", F,
        [("    T = x.shape[1]\n    mask", "    T = x.shape[1]\n    k = T  # one chunk: backpropagate through everything\n"
                                       "    mask")],
        ["truncated_bptt_grads"], hint="full backpropagation through time"),
    Bug("tbptt: state not carried between chunks (every chunk restarts from h0)", F,
        [(RNN_CALL, RNN_CALL.replace("(emb, h,", "(emb, h0,"))], ["truncated_bptt_grads"], hint="start from h0"),
    Bug("tbptt: gradients averaged instead of summed over chunks", F,
        [(GRADS_END, "    h_last = h\n    grads = {name: g / len(range(0, T, k)) for name, g in grads.items()}\n"
                     "    # END SOLUTION\n    return loss, grads, h_last")],
        ["truncated_bptt_grads"], hint="SUM of the chunks' gradients"),
    Bug("tbptt: loss and gradients averaged over chunks", F,
        [(GRADS_END, "    h_last = h\n    n = len(range(0, T, k))\n    loss = loss / n\n"
                     "    grads = {name: g / n for name, g in grads.items()}\n"
                     "    # END SOLUTION\n    return loss, grads, h_last")],
        ["truncated_bptt_grads"], hint="averaged over the chunks"),
    Bug("tbptt: last partial chunk dropped (grads)", F,
        [(GRADS_LOOP, "for start in range(0, T - k + 1, k):  # full chunks only")], GRADS, hint="last, shorter chunk"),
    Bug("tbptt: carried state is the chunk's first step instead of its last", F,
        [(CARRY, "h = hs[:, 0]  # (N, H)")], GRADS),
    # ---- tbptt_train
    Bug("tbptt: one update per sequence instead of per chunk", F,
        [(CLIP_CALL + "\n        " + STEP,
          "total = grads if start == 0 else {name: total[name] + grads[name] for name in grads}"),
         ("    new_params = params\n",
          "    clipped, _ = clip_grad_norm(total, max_norm)\n"
          "    new_params = {name: p - lr * clipped[name] for name, p in params.items()}\n")],
        ["tbptt_train"], hint="updated once for the whole sequence"),
    Bug("tbptt: no clipping before the update", F,
        [(STEP, "params = {name: p - lr * grads[name] for name, p in params.items()}")],
        ["tbptt_train"], hint="unclipped gradients"),
    Bug("tbptt: training restarts every chunk from h0", F,
        [(TRAIN_CALL, TRAIN_CALL.replace("(xc, yc, h,", "(xc, yc, h0,"))], ["tbptt_train"], hint="start from h0"),
    Bug("tbptt: training drops the last partial chunk", F,
        [(TRAIN_LOOP, "for start in range(0, T - k + 1, k):  # full chunks only")],
        ["tbptt_train"], hint="last, shorter chunk"),
    Bug("tbptt: SGD step adds the gradient", F,
        [(STEP, "params = {name: p + lr * clipped[name] for name, p in params.items()}")], ["tbptt_train"]),
    Bug("tbptt: training edits params in place (params[name] -= ...)", F,
        [(STEP, "for name in params:\n            params[name] -= lr * clipped[name]")],
        ["tbptt_train"], hint="modified its input"),
    Bug("tbptt: training edits the arrays in place (np.subtract(..., out=p))", F,
        [(STEP, "params = {name: np.subtract(p, lr * clipped[name], out=p) for name, p in params.items()}")],
        ["tbptt_train"], hint="modified its input"),
    Bug("tbptt: losses returned as a Python list", F,
        [("    losses = np.stack(losses)  # (number of chunks,)\n", "")],
        ["tbptt_train"], hint="should be a NumPy array"),
]

NUMPY_OWN = [  # NumPy's own mistakes
    Bug("tbptt: gradient sums started with np.zeros(p.shape) (float64)", F,
        [("grads = {name: np.zeros_like(p) for name, p in params.items()}",
          "grads = {name: np.zeros(p.shape) for name, p in params.items()}")],
        GRADS, hint="np.zeros_like"),
    Bug("tbptt: loss sum started with np.zeros(()) (float64)", F,
        [('loss = np.zeros((), dtype=params["W_out"].dtype)', "loss = np.zeros(())")],
        GRADS, hint="dtype=x.dtype"),
    Bug("tbptt: clip scale upcast by a 0-dim float64 array (np.array(max_norm))", F,
        [(SCALE, "scale = np.array(max_norm) / (total_norm + 1e-6) if total_norm > max_norm else 1")],
        CLIP, hint="dtype"),
    Bug("tbptt: losses as np.array(losses, dtype=float) (float64)", F,
        [("losses = np.stack(losses)  # (number of chunks,)", "losses = np.array(losses, dtype=float)")],
        ["tbptt_train"], hint="dtype"),
    Bug("tbptt: gradients summed in place into its own arrays (grads[name] += ..., correct: passes)", F,
        [("grads = {name: grads[name] + chunk_grads[name] for name in grads}",
          "for name in grads:\n            grads[name] += chunk_grads[name]")],
        []),
    Bug("tbptt: the carried state squeezed (N=1 or H=1 loses an axis)", F,
        [(CARRY, "h = np.squeeze(hs[:, -1:])  # (N, H)")], GRADS, hint="IndexError"),  # the next chunk's rnn_forward
    Bug("tbptt: total norm by np.dot of the flattened arrays (correct: passes)", F,
        [(TOTAL_NORM, "total_norm = np.sqrt(sum(np.dot(g.ravel(), g.ravel()) for g in grads.values()))")], []),
    Bug("tbptt: total norm summed over axis 0 only", F,
        [(TOTAL_NORM, "total_norm = np.sqrt(sum((g * g).sum(axis=0) for g in grads.values()))")],
        CLIP, hint="shape"),
]

BUGS = SHARED + NUMPY_OWN
