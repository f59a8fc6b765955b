import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gato.tokenizers import Vocab
from gato.tokenizers.continuous import ContinuousTokenizer, inverse_mu_law, mu_law

VOCAB = Vocab(text_size=32000, bins=1024)
TOK = ContinuousTokenizer(VOCAB)
HALF_BIN = 1.0 / VOCAB.bins  # bins are 2/1024 wide on [-1, 1]

finite = st.floats(allow_nan=False, allow_infinity=False, width=64, min_value=-1e12, max_value=1e12)


def test_companded_plus_one_lands_in_last_bin_and_minus_one_in_first():
    # Values whose companded form is exactly +-1 (x = +-M) and beyond.
    ids = TOK.encode(np.array([256.0, -256.0, 1e9, -1e9]))
    assert ids.tolist() == [
        VOCAB.bin_offset + 1023,
        VOCAB.bin_offset,
        VOCAB.bin_offset + 1023,
        VOCAB.bin_offset,
    ]


def test_bounded_plus_one_is_bin_1023_not_1024():
    ids = TOK.encode_bounded(np.array([1.0, -1.0, 0.0]), -1.0, 1.0)
    assert ids.tolist() == [VOCAB.bin_offset + 1023, VOCAB.bin_offset, VOCAB.bin_offset + 512]


def test_bin_edges_follow_the_documented_half_open_intervals():
    # Bin b covers [-1 + 2b/1024, -1 + 2(b+1)/1024): an exact edge belongs to the upper bin.
    b = np.arange(1024)
    edges = -1.0 + 2.0 * b / 1024
    assert (TOK.encode_bounded(edges, -1.0, 1.0) - VOCAB.bin_offset).tolist() == b.tolist()
    just_below = edges[1:] - 1e-12  # below the edge by far more than the scaling round-off
    assert (TOK.encode_bounded(just_below, -1.0, 1.0) - VOCAB.bin_offset).tolist() == b[
        :-1
    ].tolist()


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.integers(1, 50), elements=finite))
def test_encode_is_monotone_in_x(x):
    xs = np.sort(x)
    ids = TOK.encode(xs)
    assert np.all(np.diff(ids) >= 0)


@settings(max_examples=300, deadline=None)
@given(arrays(np.float64, st.integers(1, 30), elements=finite))
def test_ids_always_inside_the_value_range(x):
    ids = TOK.encode(x)
    assert ids.dtype == np.int64 and ids.shape == x.shape
    assert np.all((ids >= VOCAB.bin_offset) & (ids < VOCAB.bin_offset + 1024))


@settings(max_examples=300, deadline=None)
@given(st.integers(-9, 3), st.floats(-1.0, 1.0))
def test_round_trip_within_half_a_bin_in_the_companded_domain(exponent, mantissa):
    x = np.array([mantissa * 10.0**exponent])  # magnitudes from 1e-9 to 1e3
    decoded = TOK.decode(TOK.encode(x)).astype(np.float64)
    y, y_back = np.clip(mu_law(x), -1, 1), mu_law(decoded)
    assert np.all(np.abs(y - y_back) <= HALF_BIN + 1e-6)


def test_values_beyond_m_clip_to_the_edge_bins():
    ids = TOK.encode(np.array([300.0, 1e30, -300.0]))
    assert (ids - VOCAB.bin_offset).tolist() == [1023, 1023, 0]


def test_mu_law_inverse_is_exact_on_the_unit_interval():
    y = np.linspace(-1, 1, 101)
    np.testing.assert_allclose(mu_law(inverse_mu_law(y)), y, atol=1e-12)


def test_shape_is_preserved_for_matrices():
    x = np.arange(12, dtype=np.float32).reshape(3, 4) - 6
    assert TOK.encode(x).shape == (3, 4)
    assert TOK.decode(TOK.encode(x)).dtype == np.float32


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-2.0, 3.0), min_size=1, max_size=8))
def test_bounded_decode_stays_inside_the_bounds(values):
    low, high = -2.0, 3.0
    ids = TOK.encode_bounded(np.array(values), low, high)
    out = TOK.decode_bounded(ids, low, high)
    assert np.all((out >= low) & (out <= high))
    assert np.all(np.abs(out - np.array(values)) <= (high - low) / 1024 / 2 + 1e-5)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_are_rejected_with_a_clear_error(bad):
    with pytest.raises(ValueError, match="not finite"):
        TOK.encode(np.array([0.0, bad]))
    with pytest.raises(ValueError, match="not finite"):
        TOK.encode_bounded(np.array([bad]), -1.0, 1.0)


def test_bounded_values_outside_the_bounds_are_rejected_not_clamped():
    with pytest.raises(ValueError, match="outside its bounds"):
        TOK.encode_bounded(np.array([0.5, 2.5]), np.array([-1.0, -2.0]), np.array([1.0, 2.0]))


def test_decode_rejects_ids_outside_the_value_range():
    with pytest.raises(ValueError, match="not a value id"):
        TOK.decode(np.array([VOCAB.bin_offset + 1024]))
    with pytest.raises(ValueError, match="not a value id"):
        TOK.decode(np.array([5]))


def test_non_numeric_input_is_a_value_error():
    with pytest.raises(ValueError, match="must be numbers"):
        TOK.encode(["a", "b"])


EDGES = st.sampled_from([-1.0, 0.0, 1.0, -0.0, 256.0, -256.0, 1e-300, -1e300])
values_with_edges = st.one_of(finite, EDGES)


@settings(max_examples=150, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(0, 4), st.integers(0, 5)), elements=values_with_edges)
)
def test_any_shape_incl_empty_and_edge_values_round_trips_inside_the_value_range(x):
    ids = TOK.encode(x)
    assert ids.shape == x.shape and ids.dtype == np.int64
    assert np.all((ids >= VOCAB.bin_offset) & (ids < VOCAB.bin_offset + VOCAB.bins))
    back = TOK.decode(ids)
    assert back.shape == x.shape and np.all(np.isfinite(back))
    # Decoding then encoding again lands in the same bin (centres are inside their bins).
    assert np.array_equal(TOK.encode(back), ids)


@st.composite
def bounded_case(draw):
    """Per-dimension float32 bounds (like a gymnasium Box) and values at or inside them."""
    n = draw(st.integers(0, 6))
    low = np.array(draw(st.lists(st.floats(-1e3, 1e3), min_size=n, max_size=n)), np.float32)
    width = np.array(draw(st.lists(st.floats(1e-2, 1e3), min_size=n, max_size=n)), np.float32)
    high = (low + width).astype(np.float32)
    frac = np.array(draw(st.lists(st.sampled_from([0.0, 1.0, 0.5]) | st.floats(0, 1),
                                  min_size=n, max_size=n)))  # fmt: skip
    values = np.clip(low + frac * (high - low), low, high).astype(np.float32)  # bounds included
    return values, low, high


@settings(max_examples=150, deadline=None)
@given(bounded_case())
def test_bounded_values_at_and_inside_any_bounds_round_trip_within_half_a_bin(case):
    values, low, high = case
    ids = TOK.encode_bounded(values, low, high)
    assert np.all((ids >= VOCAB.bin_offset) & (ids < VOCAB.bin_offset + VOCAB.bins))
    back = TOK.decode_bounded(ids, low, high)  # float32
    assert np.all((back >= low) & (back <= high))
    half_bin = (high.astype(np.float64) - low) / VOCAB.bins / 2
    rounding = np.spacing(np.maximum(np.abs(values), np.abs(back)))  # one float32 step
    assert np.all(np.abs(back.astype(np.float64) - values) <= half_bin + rounding)


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, st.integers(1, 8), elements=finite),
    st.sampled_from([np.nan, np.inf, -np.inf]),
    st.integers(0, 7),
)
def test_a_non_finite_value_anywhere_is_rejected(x, bad, where):
    x[where % len(x)] = bad
    with pytest.raises(ValueError, match="not finite"):
        TOK.encode(x)
    with pytest.raises(ValueError, match="not finite"):
        TOK.encode_bounded(x, -1e13, 1e13)
