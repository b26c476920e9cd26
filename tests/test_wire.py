"""The worker -> grader format carries data only: round trips, and hostile frames rejected."""
import json
import struct

import pytest
import torch

from autograder import wire


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


def test_subclasses_and_pretenders_become_other():
    sub = torch.randn(2).as_subclass(Sneaky)
    got = roundtrip((sub, FakeTensor(), torch.randn(2).numpy()))
    assert all(isinstance(g, wire.Other) for g in got)
    assert "Sneaky" in got[0].type and "FakeTensor" in got[1].type and got[2].type == "numpy.ndarray"


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
