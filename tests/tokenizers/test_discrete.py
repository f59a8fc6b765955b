import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gato.tokenizers import Vocab
from gato.tokenizers.discrete import DiscreteTokenizer

VOCAB = Vocab(text_size=500, bins=1024)
TOK = DiscreteTokenizer(VOCAB)


def test_round_trip_on_every_value():
    values = np.arange(1024)
    ids = TOK.encode(values)
    assert ids.dtype == np.int64
    assert ids.tolist() == (values + 500).tolist()
    assert TOK.decode(ids).tolist() == values.tolist()


@pytest.mark.parametrize("bad", [1024, -1, 5000])
def test_out_of_range_values_are_rejected(bad):
    with pytest.raises(ValueError, match=f"discrete value {bad} is outside"):
        TOK.encode(np.array([3, bad]))


def test_whole_floats_are_accepted_and_fractions_rejected():
    assert TOK.encode(np.array([2.0])).tolist() == [502]
    with pytest.raises(ValueError, match="whole numbers"):
        TOK.encode(np.array([2.5]))
    with pytest.raises(ValueError, match="whole numbers"):
        TOK.encode(np.array([np.nan]))


def test_scalar_and_matrix_shapes_are_preserved():
    assert TOK.encode(7).shape == ()
    assert TOK.encode(np.zeros((2, 3), dtype=np.uint8)).shape == (2, 3)


def test_decode_rejects_text_ids():
    with pytest.raises(ValueError, match="not a value id"):
        TOK.decode(np.array([499]))


def test_vocab_layout():
    v = Vocab(text_size=32000, bins=1024)
    assert (v.bin_offset, v.separator) == (32000, 33024)
    assert (
        len({v.separator, v.patch, v.pad}) == 3 and v.size == max(v.separator, v.patch, v.pad) + 1
    )


@settings(max_examples=100, deadline=None)
@given(
    arrays(np.int64, st.tuples(st.integers(0, 4), st.integers(0, 6)), elements=st.integers(0, 1023))
)
def test_any_shape_incl_empty_round_trips_inside_the_value_range(values):
    ids = TOK.encode(values)
    assert ids.shape == values.shape
    assert np.all((ids >= VOCAB.bin_offset) & (ids < VOCAB.bin_offset + VOCAB.bins))
    assert np.array_equal(TOK.decode(ids), values)


@settings(max_examples=100, deadline=None)
@given(
    arrays(np.int64, st.integers(1, 10), elements=st.integers(0, 1023)),
    st.integers(-(2**40), 2**40).filter(lambda v: not 0 <= v < 1024),
    st.integers(0, 9),
)
def test_one_out_of_range_value_anywhere_is_rejected(values, bad, where):
    values[where % len(values)] = bad
    with pytest.raises(ValueError, match="outside"):
        TOK.encode(values)
