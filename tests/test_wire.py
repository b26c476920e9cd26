"""The worker -> grader format carries data only: round trips, and hostile frames rejected."""
import json
import random
import re
import struct
import time
import tracemalloc

import numpy as np
import pytest
import torch

from autograder.engine import wire


def roundtrip(obj):
    header, payload = wire.encode(obj)
    return wire.decode(header, payload)


def test_tensors_and_containers_round_trip():
    t = torch.randn(2, 3, dtype=torch.float64)
    got = roundtrip({"a": (t, [torch.arange(4), None]), "b": 1.5, "c": True, "d": 10 ** 30, "e": "s"})
    assert torch.equal(got["a"][0].data, t) and got["a"][0].device == "cpu"
    assert torch.equal(got["a"][1][0].data, torch.arange(4)) and got["a"][1][1] is None
    assert got["b"] == 1.5 and got["c"] is True and got["d"] == 10 ** 30 and got["e"] == "s"


def test_special_floats_and_empty_and_zero_dim_tensors():
    got = roundtrip((float("nan"), float("inf"), torch.empty(0, 3), torch.tensor(2.5)))
    assert got[0] != got[0] and got[1] == float("inf")
    assert got[2].shape == (0, 3) and got[3].shape == () and got[3].data.item() == 2.5


def test_non_contiguous_and_requires_grad_are_reported():
    t = torch.randn(3, 4).T
    got = roundtrip(t.clone().requires_grad_(True))
    assert got.requires_grad and torch.equal(got.data, t)


class Sneaky(torch.Tensor):
    pass


class FakeTensor:
    shape = (2, 3)
    dtype = torch.float64

    def __repr__(self):
        raise RuntimeError("hostile repr")


class ArraySub(np.ndarray):
    """A NumPy array subclass (np.matrix, a masked array ... are others): its methods could lie."""


def test_subclasses_and_pretenders_become_other():
    """Exact types only: a tensor subclass, a pretender, a NumPy array subclass (np.matrix) and an object array
    are "other" (the grader says what they were); a plain array, a NumPy scalar of a carried dtype are values
    that say they came from NumPy (the NumPy track's answers)."""
    sub = torch.randn(2).as_subclass(Sneaky)
    got = roundtrip((sub, FakeTensor(), np.zeros(2).view(ArraySub), np.array([object()]), np.zeros(2, dtype=">f8")))
    assert all(isinstance(g, wire.Other) for g in got)
    assert "Sneaky" in got[0].type and "FakeTensor" in got[1].type and got[2].type.endswith("ArraySub")
    assert got[3].type == "numpy.ndarray(object, 1 dims)" and got[4].type == "numpy.ndarray(float64 big-endian, 1 dims)"
    arr, scalar = roundtrip((np.arange(3.0, dtype=np.float32), np.float64(2.5)))
    assert isinstance(arr, wire.Received) and arr.array == "ndarray" and arr.dtype == torch.float32
    assert torch.equal(arr.data, torch.tensor([0.0, 1.0, 2.0]))
    assert scalar.array == "scalar" and scalar.shape == () and float(scalar.data) == 2.5
    assert roundtrip(torch.ones(1)).array is None


@pytest.mark.parametrize("kind,shape", [("teapot", [1]), ("scalar", [1]), (7, [1])])
def test_a_bad_array_kind_is_rejected(kind, shape):
    node = {"t": "tensor", "dtype": "float64", "shape": shape, "device": "cpu", "off": 0, "len": 8, "array": kind}
    with pytest.raises(wire.WireError):
        wire.decode(json.dumps(node).encode(), b"\x00" * 8)


def _frame(header_obj, payload=b""):
    return json.dumps(header_obj).encode(), payload


@pytest.mark.parametrize("node,payload", [
    ({"t": "tensor", "dtype": "float64", "shape": [2], "off": 0, "len": 16}, b"\x00" * 8),
    ({"t": "tensor", "dtype": "float64", "shape": [3], "off": 0, "len": 16}, b"\x00" * 16),
    ({"t": "tensor", "dtype": "object", "shape": [1], "off": 0, "len": 8}, b"\x00" * 8),
    ({"t": "tensor", "dtype": "float64", "shape": [-1], "off": 0, "len": 8}, b"\x00" * 8),
    ({"t": "pickle", "v": "cos\nsystem\n"}, b""),
    ({"t": "tuple", "items": "notalist"}, b""),
    ({"t": "int", "v": "1e5"}, b""),
])
def test_malformed_frames_are_rejected(node, payload):
    with pytest.raises(wire.WireError):
        wire.decode(*_frame(node, payload))


def test_header_that_is_not_json_is_rejected():
    with pytest.raises(wire.WireError):
        wire.decode(b"\x80\x04cos\nsystem\n", b"")


def test_oversized_frames_are_refused_before_reading():
    data = struct.pack(">QQ", wire.MAX_HEADER + 1, 0)
    chunks = [data]
    with pytest.raises(wire.WireError):
        wire.read_frame(0, lambda fd, n: chunks.pop(0)[:n] if chunks else b"")


# --------------------------------------------------------------------------- bounded decoding
def _tensor(off, length, shape=None, dtype="uint8"):
    return {"t": "tensor", "dtype": dtype, "shape": [length] if shape is None else shape, "device": "cpu",
            "requires_grad": False, "off": off, "len": length}


def _list(*items):
    return {"t": "list", "items": list(items)}


@pytest.mark.parametrize("entries,size", [
    ([(0, 16), (8, 16)], 24),  # overlapping
    ([(8, 8)], 16),  # a gap before the first
    ([(0, 4), (8, 8)], 16),  # a gap between two
    ([(8, 8), (0, 8)], 16),  # out of order
    ([(0, 8), (0, 8)], 8),  # the same bytes twice
    ([(0, 8)], 16),  # bytes that no entry uses
], ids=["overlap", "gap first", "gap between", "out of order", "same bytes", "bytes left over"])
def test_tensor_entries_must_tile_the_payload_in_order(entries, size):
    header, payload = _frame(_list(*[_tensor(off, n) for off, n in entries]), bytes(size))
    with pytest.raises(wire.WireError):
        wire.decode(header, payload)


def test_entries_in_encoder_order_decode():
    """The encoder writes tensors depth first, in the order json.loads gives them back."""
    obj = {"b": (torch.arange(3), [torch.ones(2, 2), {"z": torch.zeros(0), "a": torch.eye(3)}]), "a": torch.ones(1)}
    header, payload = wire.encode(obj)
    got = wire.decode(header, payload)
    offsets = [int(s) for s in re.findall(rb'"off": (\d+)', header)]
    assert offsets == sorted(offsets) and offsets[0] == 0
    assert torch.equal(got["b"][1][1]["a"].data, torch.eye(3)) and torch.equal(got["a"].data, torch.ones(1))


def test_entries_sharing_a_full_payload_are_refused_after_one_copy_at_most():
    """The frame of the integrity issue: 64 entries over the same 32 MB (2 GB decoded before)."""
    size = wire.MAX_PAYLOAD
    header, payload = _frame(_list(*[_tensor(0, size)] * 64), bytes(size))
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(wire.WireError, match="without gap or overlap"):
            wire.decode(header, payload)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 2.0
    assert peak < size + (1 << 20), "decoding allocated %d MB for a %d MB payload" % (peak >> 20, size >> 20)


@pytest.mark.parametrize("header", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"t": "list", "items": [' * 100_000 + b"]}" * 100_000,
    b'{"a": ' * 100_000 + b"1" + b"}" * 100_000,
], ids=["arrays", "list values", "objects"])
def test_a_header_nested_100k_deep_is_refused_before_parsing(header):
    with pytest.raises(wire.WireError, match="brackets deep|more than .* values"):
        wire.decode(header, b"")


def test_brackets_inside_strings_do_not_count_as_nesting():
    text = '[[[[{{{{ \\" \\\\' * 10 + '"'
    got = wire.decode(*wire.encode([text, {"k": text}]))
    assert got == [text[:wire.MAX_STR], {"k": text[:wire.MAX_STR]}]


def test_too_many_values_in_one_frame_are_refused():
    """Each list is within MAX_ITEMS; together they are over MAX_NODES."""
    per_list = wire.MAX_ITEMS
    lists = [_list(*[{"t": "none"}] * per_list) for _ in range(wire.MAX_NODES // per_list + 1)]
    with pytest.raises(wire.WireError, match="more than %d values" % wire.MAX_NODES):
        wire.decode(*_frame(_list(*lists)))


def test_a_header_of_millions_of_tiny_values_is_refused_before_parsing():
    """4 MB of `[]` made json.loads build 1.4 million lists (90 MB) before anything was checked."""
    header = b"[" + b"[]," * ((wire.MAX_HEADER - 8) // 3) + b"[]]"
    tracemalloc.start()
    try:
        with pytest.raises(wire.WireError) as refused:
            wire.decode(header, b"")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * len(header), "%d MB allocated for a %d MB header" % (peak >> 20, len(header) >> 20)
    assert "more than %d values" % wire.MAX_JSON_VALUES in str(refused.value)


@pytest.mark.parametrize("node", [
    _tensor(0, 0, shape=[0, 2 ** 64]),
    _tensor(0, 0, shape=[0, 10 ** 300]),
    _tensor(0, 1, shape=[1] * 17),  # MAX_DIMS is 16
    dict(_tensor(0, 1), dtype=["uint8"]),
    dict(_tensor(0, 1), device=["cpu"] * 1000),
    {"t": "str", "v": ["s"] * 1000},
    {"t": "other", "type": {"a": 1}, "repr": ""},
    {"t": ["tensor"]},
], ids=["shape 2**64", "shape 10**300", "too many dims", "dtype a list", "device a list", "str not a str",
        "type not a str", "t a list"])
def test_absurd_fields_are_wire_errors_not_crashes(node):
    payload = bytes(node.get("len", 0)) if isinstance(node.get("len"), int) else b""
    with pytest.raises(wire.WireError):
        wire.decode(*_frame(node, payload))


def test_mangled_frames_give_wire_errors_only():
    """Random byte edits of a real frame either still decode or raise WireError, nothing else."""
    rng = random.Random(0)
    header, payload = wire.encode({"id": 3, "steps": [{"ok": True, "value": (torch.ones(2, 3), [1.5, None])}],
                                   "inputs_after": {"x": torch.arange(4)}})
    for _ in range(3000):
        h = bytearray(header)
        for _ in range(rng.randint(1, 4)):
            h[rng.randrange(len(h))] = rng.choice(b'0123456789[]{}",:-etnfu\\ ')
        try:
            wire.decode(bytes(h), payload)
        except wire.WireError:
            pass


def test_what_the_encoder_cannot_carry_still_decodes():
    deep = torch.ones(2)
    for _ in range(3 * wire.MAX_DEPTH):
        deep = [deep]
    wide = {"k%d" % i: [torch.zeros([1] * wire.MAX_DIMS)] * wire.MAX_ITEMS for i in range(3)}  # over MAX_NODES
    many_dims = torch.zeros([1] * (wire.MAX_DIMS + 1))
    bad_keys = [torch.ones(2), {1: torch.ones(3)}, torch.full((2,), 7.0)]  # no orphan bytes from the dict
    got = wire.decode(*wire.encode([deep, many_dims, bad_keys, wide]))  # wide last: it takes every node left
    inner = got[0]
    while isinstance(inner, list):
        inner = inner[0]
    assert isinstance(inner, wire.Other) and inner.type == "nested too deep"
    assert isinstance(got[1], wire.Other) and "%d dims" % (wire.MAX_DIMS + 1) in got[1].type
    assert isinstance(got[2][1], wire.Other) and torch.equal(got[2][2].data, torch.full((2,), 7.0))
    assert wire.MAX_NODES - 100 < sum(len(v) for v in got[3].values()) < wire.MAX_NODES
