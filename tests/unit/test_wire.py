"""wire.py, the parts tests/test_wire.py leaves out: exact types, every dtype, the framing.

tests/test_wire.py covers round trips of common values and every malformed or oversized frame; this
file adds a bit-exact round trip of each whitelisted dtype, the values that must come back as Other
(complex and sparse tensors, subclasses of int, str and dict), what stays of a hostile or long repr,
the make_tensor hook, and frame / read_frame / read_exact on a stream that arrives in pieces.
"""
import enum
import json
import math

import pytest
import torch

from autograder.engine import wire


def roundtrip(obj, **kw):
    return wire.decode(*wire.encode(obj), **kw)


@pytest.mark.parametrize("name", sorted(wire.DTYPES))
def test_every_whitelisted_dtype_round_trips_bit_exactly(name, gen):
    dtype = wire.DTYPES[name]
    if dtype == torch.bool:
        t = torch.rand(3, 5, generator=gen) > 0.5
    elif dtype.is_floating_point:
        t = (torch.randn(3, 5, generator=gen) * 100).to(dtype)
    else:
        t = torch.randint(-100 if dtype != torch.uint8 else 0, 100, (3, 5), generator=gen).to(dtype)
    got = roundtrip(t)
    assert got.dtype == dtype and got.shape == (3, 5)
    assert torch.equal(got.data.view(torch.uint8) if dtype != torch.bool else got.data,
                       t.view(torch.uint8) if dtype != torch.bool else t)


def test_float_specials_keep_their_bits():
    t = torch.tensor([math.nan, math.inf, -math.inf, -0.0, 5e-324], dtype=torch.float64)
    got = roundtrip(t).data
    assert torch.equal(got.view(torch.int64), t.view(torch.int64))


def test_python_scalars_keep_their_exact_types():
    got = roundtrip((True, 1, 1.0, -0.0, "1", None))
    assert [type(v) for v in got] == [bool, int, float, float, str, type(None)]
    assert math.copysign(1.0, got[3]) == -1.0


def test_tuples_and_lists_stay_apart():
    got = roundtrip([(1,), [2], ()])
    assert type(got) is list and type(got[0]) is tuple and type(got[1]) is list and got[2] == ()


class Color(enum.IntEnum):
    RED = 1


class Text(str):
    pass


class Table(dict):
    pass


@pytest.mark.parametrize("value,type_name", [
    (Color.RED, "Color"), (Text("h"), "Text"), (Table(a=1), "Table"),
    (torch.zeros(2, dtype=torch.complex64), "complex64"), (torch.eye(2).to_sparse(), "sparse"),
], ids=["IntEnum", "str subclass", "dict subclass", "complex tensor", "sparse tensor"])
def test_what_the_format_does_not_carry_comes_back_as_other(value, type_name):
    got = roundtrip(value)
    assert isinstance(got, wire.Other) and type_name in got.type


class HostileRepr:
    def __repr__(self):
        raise SystemExit("no")


class NotAStringRepr:
    def __repr__(self):
        return 42


class LongRepr:
    def __repr__(self):
        return "L" * 10_000


def test_no_repr_of_the_students_runs_in_the_encoder():
    """An object of another type is sent as its type's name alone: its __repr__ (student code, run after the call
    and outside the observer) is never called, whatever it does."""
    got = roundtrip([HostileRepr(), NotAStringRepr()])
    assert [o.repr for o in got] == ["", ""] and all(o.type.endswith("Repr") for o in got)


def test_a_long_repr_is_cut_to_200_characters_by_the_decoder():
    header, _ = wire.encode(LongRepr())
    assert json.loads(header)["repr"] == ""  # never asked for
    forged = json.dumps({"t": "other", "type": "T" * 1000, "repr": "R" * 1000}).encode()
    got = wire.decode(forged, b"")
    assert got.type == "T" * 200 and got.repr == "R" * 200


def test_a_long_list_keeps_its_first_max_items():
    got = roundtrip(list(range(wire.MAX_ITEMS + 10)))
    assert got == list(range(wire.MAX_ITEMS))


def test_make_tensor_receives_the_data_and_what_the_worker_claimed():
    t = torch.arange(3.0).requires_grad_()
    got = roundtrip({"a": t}, make_tensor=lambda data, device, rg: ("T", data.tolist(), device, rg))
    assert got == {"a": ("T", [0.0, 1.0, 2.0], "cpu", True)}


def test_a_decoded_tensor_owns_its_bytes():
    header, payload = wire.encode(torch.ones(4))
    payload = bytearray(payload)
    got = wire.decode(header, payload)
    payload[:] = bytes(len(payload))
    assert torch.equal(got.data, torch.ones(4))
    got.data += 1  # writable
    assert torch.equal(got.data, torch.full((4,), 2.0))


# --------------------------------------------------------------------------- framing
def chunked_reader(data, size):
    """read(fd, n) over `data`, giving at most `size` bytes a call (as a pipe does)."""
    pos = 0

    def read(fd, n):
        nonlocal pos
        chunk = data[pos:pos + min(n, size)]
        pos += len(chunk)
        return chunk

    return read


def test_a_frame_starts_with_the_two_lengths_big_endian():
    obj = {"x": torch.arange(5), "s": "é"}
    header, payload = wire.encode(obj)
    data = wire.frame(obj)
    assert int.from_bytes(data[:8], "big") == len(header)
    assert int.from_bytes(data[8:16], "big") == len(payload)
    assert data[16:] == header + payload


@pytest.mark.parametrize("size", [1, 7, 1 << 20])
def test_read_frame_reassembles_a_frame_arriving_in_pieces(size):
    obj = [torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)), "ok"]
    header, payload = wire.read_frame(0, chunked_reader(wire.frame(obj), size))
    got = wire.decode(header, payload)
    assert torch.equal(got[0].data, obj[0]) and got[1] == "ok"


def test_read_exact_raises_eoferror_when_the_stream_ends_early():
    with pytest.raises(EOFError):
        wire.read_exact(0, 10, chunked_reader(b"12345", 3))


def test_read_frame_of_a_truncated_frame_raises_eoferror():
    data = wire.frame(torch.ones(10))
    with pytest.raises(EOFError):
        wire.read_frame(0, chunked_reader(data[:-1], 4096))
