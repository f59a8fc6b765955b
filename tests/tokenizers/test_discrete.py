import numpy as np
import pytest

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
