"""Instructor tests for tbptt.py: the student's RNN language model learns a short text.

An example of the kit's instructor tests (see README.md in this folder): a unittest file written
with gradescope-utils' decorators. The grader runs it inside the sandbox, with the student's
files first on sys.path, so `import tbptt` imports the student's tbptt.py (and its rnn_layers.py).
The grader sets the global TRACK to the course's track before the file runs: on the NumPy track the
student's tbptt_train takes and returns NumPy arrays, and `student_tbptt_train` converts at the boundary.
"""
import math
import unittest

import torch
from gradescope_utils.autograder_utils.decorators import number, partial_credit, tags, weight

# Charles Dickens, A Tale of Two Cities (1859), public domain.
TEXT = ("it was the best of times it was the worst of times it was the age of wisdom "
        "it was the age of foolishness it was the epoch of belief it was the epoch of incredulity")
D, H = 16, 32  # word-vector and hidden sizes
K, LR, MAX_NORM = 6, 0.05, 5.0  # chunk length, learning rate, clipping threshold
PASSES, BLOCK = 20, 5  # training passes over the text; passes per block (loss_keeps_falling)
SEED = 231

_trained = []  # the mean chunk loss of every pass, computed once for both tests
TRACK = globals().get("TRACK", "torch")  # set by the grader (course.toml's track); "torch" when run alone


def student_tbptt_train(*args):
    """The student's tbptt_train on these torch arguments; its (params, losses, h) as torch tensors. On the
    NumPy track, tensors go in as NumPy arrays and arrays (or NumPy scalars) come back as tensors."""
    import tbptt  # the student's file

    if TRACK != "numpy":
        return tbptt.tbptt_train(*args)
    import numpy as np

    def to_numpy(v):
        if torch.is_tensor(v):
            return v.numpy()
        return {k: to_numpy(x) for k, x in v.items()} if isinstance(v, dict) else v

    def to_torch(v):
        if isinstance(v, (np.ndarray, np.generic)):
            return torch.from_numpy(np.array(v))
        if isinstance(v, dict):
            return {k: to_torch(x) for k, x in v.items()}
        return type(v)(to_torch(x) for x in v) if isinstance(v, (tuple, list)) else v

    return to_torch(tbptt.tbptt_train(*[to_numpy(a) for a in args]))


def corpus():
    """The text as token ids: x (1, T) the inputs, y (1, T) the next words; V the vocabulary size."""
    words = TEXT.split()
    vocab = sorted(set(words))
    ids = torch.tensor([vocab.index(w) for w in words])  # (T + 1,)
    return ids[:-1][None], ids[1:][None], len(vocab)


def init_params(V):
    """Parameters of the language model, from a fixed seed (float64)."""
    g = torch.Generator().manual_seed(SEED)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    return {"W_embed": randn(V, D), "Wx": randn(D, H) / math.sqrt(D), "Wh": randn(H, H) / math.sqrt(H),
            "b": torch.zeros(H, dtype=torch.float64), "W_out": randn(H, V) / math.sqrt(H),
            "b_out": torch.zeros(V, dtype=torch.float64)}


def pass_losses():
    """Train with the student's tbptt_train for PASSES passes; the mean chunk loss of each pass."""
    if not _trained:
        x, y, V = corpus()
        params = init_params(V)
        chunks = math.ceil(x.shape[1] / K)
        means = []
        for p in range(PASSES):
            h0 = torch.zeros(1, H, dtype=torch.float64)
            params, losses, _ = student_tbptt_train(x, y, h0, params, K, LR, MAX_NORM)
            if not torch.is_tensor(losses) or tuple(losses.shape) != (chunks,):
                raise AssertionError("tbptt_train returned losses of shape %s on a sequence of %d steps cut "
                                     "into chunks of %d: expected (%d,), one loss per chunk" % (
                                         tuple(getattr(losses, "shape", ())) or type(losses).__name__,
                                         x.shape[1], K, chunks, chunks))
            means.append(float(losses.double().mean()))
        _trained.extend(means)
    return list(_trained)


class LanguageModelTests(unittest.TestCase):
    longMessage = False  # the failure says only what the messages below say

    @weight(3)
    @number("5.1")
    @tags("language model", "tbptt")
    def test_loss_drops(self):
        """tbptt_train: the language model learns a short text (loss falls by 20% or more)"""
        means = pass_losses()
        first, last = means[0], means[-1]
        self.assertTrue(all(math.isfinite(m) for m in means),
                        "a chunk loss is NaN or infinite during training: %s" % ["%.3g" % m for m in means])
        self.assertLess(last, 0.8 * first,
                        "after %d passes of tbptt_train over a %d-word text the mean chunk loss went from "
                        "%.3f to %.3f; it should fall below 80%% of where it started. Check that each "
                        "chunk's gradients are clipped and applied (p <- p - lr * g) before the next chunk "
                        "runs." % (PASSES, len(TEXT.split()), first, last))

    @partial_credit(2)
    @number("5.2")
    @tags("language model", "tbptt")
    def test_loss_keeps_falling(self, set_score=None):
        """tbptt_train: the loss keeps falling, block after block of training passes"""
        means = pass_losses()
        blocks = [sum(means[i:i + BLOCK]) / BLOCK for i in range(0, PASSES, BLOCK)]  # (PASSES / BLOCK,)
        better = 0
        for b in range(1, len(blocks)):
            with self.subTest(block=b):
                first, last = b * BLOCK + 1, (b + 1) * BLOCK
                self.assertLess(blocks[b], blocks[b - 1], "passes %d-%d: mean chunk loss %.3f, not below the %.3f "
                                "of the passes before" % (first, last, blocks[b], blocks[b - 1]))
                better += 1
        set_score(2.0 * better / (len(blocks) - 1))


if __name__ == "__main__":
    unittest.main()
