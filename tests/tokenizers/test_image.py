import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from gato.tokenizers.image import (
    MAX_PIXELS,
    ImageTokenizer,
    check_image,
    load_image,
    patch_intervals,
)


def _blocks(rows: int, cols: int, p: int) -> np.ndarray:
    """An image whose patch (i, j) is filled with the value i * cols + j."""
    img = np.zeros((rows * p, cols * p), dtype=np.uint8)
    for i in range(rows):
        for j in range(cols):
            img[i * p : (i + 1) * p, j * p : (j + 1) * p] = i * cols + j
    return img


def test_patches_come_in_raster_order():
    p = 4
    patches = ImageTokenizer(patch_size=p).encode(_blocks(2, 3, p))
    assert patches.shape == (6, 1, p, p)
    # Undo the normalisation and read each patch's constant value back.
    values = (patches * math.sqrt(p) + 1) / 2 * 255
    assert np.allclose(values.reshape(6, -1).mean(1), np.arange(6), atol=1e-3)


def test_pixel_values_map_to_minus_one_and_one_over_sqrt_p():
    p = 16
    img = np.zeros((32, 32, 3), dtype=np.uint8)
    img[:16] = 255
    patches = ImageTokenizer(patch_size=p).encode(img)
    assert patches.shape == (4, 3, 16, 16) and patches.dtype == np.float32
    assert np.allclose(patches[:2], 1 / 4) and np.allclose(patches[2:], -1 / 4)


def test_channel_layout_is_preserved_inside_a_patch():
    img = np.zeros((8, 8, 3), dtype=np.uint8)
    img[..., 1] = 255  # only green
    patches = ImageTokenizer(patch_size=8).encode(img)
    assert np.allclose(patches[0, 1], 1 / math.sqrt(8))
    assert np.allclose(patches[0, [0, 2]], -1 / math.sqrt(8))


def test_float_images_in_unit_range_match_uint8():
    img = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    tok = ImageTokenizer(patch_size=8)
    np.testing.assert_allclose(tok.encode(img), tok.encode(img / 255.0), atol=1e-6)


def test_resize_policy_rounds_each_side_to_the_nearest_multiple():
    tok = ImageTokenizer(patch_size=16, fit="resize")
    assert tok.fitted_shape(84, 84) == (80, 80)
    assert tok.fitted_shape(90, 30) == (96, 32)
    assert tok.fitted_shape(1, 1) == (16, 16)
    assert tok.encode(np.zeros((84, 84, 1), np.uint8)).shape == (25, 1, 16, 16)
    assert tok.encode(np.full((1, 1, 3), 255, np.uint8)).shape == (1, 3, 16, 16)


def test_crop_policy_takes_the_centre():
    img = np.zeros((20, 20), dtype=np.uint8)
    img[2:18, 2:18] = 255  # the centre 16x16 is white, the 2-pixel border black
    patches = ImageTokenizer(patch_size=16, fit="crop").encode(img)
    assert patches.shape == (1, 1, 16, 16) and np.allclose(patches, 1 / 4)
    with pytest.raises(ValueError, match="smaller than one"):
        ImageTokenizer(patch_size=16, fit="crop").encode(np.zeros((10, 40), np.uint8))


def test_fixed_size_bounds_the_patch_count_of_any_input():
    tok = ImageTokenizer(patch_size=16, size=(64, 64))
    assert tok.encode(np.zeros((1000, 3000, 3), np.uint8)).shape == (16, 3, 16, 16)
    assert tok.grid(5, 7) == (4, 4)
    with pytest.raises(ValueError, match="multiples"):
        ImageTokenizer(patch_size=16, size=(60, 64))


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((4, 4, 3), np.int32), "dtype"),
        (np.zeros((4, 4, 3), bool), "dtype"),
        (np.zeros((2, 4, 4, 3), np.uint8), "shape"),
        (np.zeros((4,), np.uint8), "shape"),
        (np.full((4, 4), 1.5, np.float32), r"inside \[0, 1\]"),
        (np.full((4, 4), np.nan, np.float32), "finite"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
        ([[0, 1], [2, 3]], "numpy array"),
    ],
)
def test_bad_images_raise_a_clear_value_error(bad, match):
    with pytest.raises(ValueError, match=match):
        ImageTokenizer(patch_size=4).encode(bad)


def test_patch_intervals_cover_the_unit_square_in_raster_order():
    r_lo, r_hi, c_lo, c_hi = patch_intervals(2, 4, resolution=128)
    assert r_lo.tolist() == [0] * 4 + [64] * 4 and r_hi.tolist() == [64] * 4 + [128] * 4
    assert c_lo.tolist() == [0, 32, 64, 96] * 2 and c_hi.tolist() == [32, 64, 96, 128] * 2


def test_patch_intervals_stay_non_empty_with_more_patches_than_bins():
    r_lo, r_hi, _, _ = patch_intervals(300, 1, resolution=128)
    assert np.all(r_hi > r_lo) and r_hi.max() <= 128 and r_lo.min() == 0


def test_load_image_reads_png_and_rejects_non_images(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.full((5, 7, 3), 200, np.uint8)).save(path)
    img = load_image(path)
    assert img.shape == (5, 7, 3) and img.dtype == np.uint8 and img[0, 0, 0] == 200
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not an image")
    with pytest.raises(ValueError, match="not a readable image"):
        load_image(junk)
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "missing.png")


def _png_claiming(path, height: int, width: int) -> None:
    """A 1x1 PNG whose header claims ``height x width`` (what a decompression bomb shows)."""
    import struct
    import zlib

    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(path)
    raw = path.read_bytes()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    claimed = struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    path.write_bytes(raw[:8] + claimed + raw[8 + len(claimed) :])


def test_images_above_max_side_are_box_shrunk_while_loading(tmp_path):
    path = tmp_path / "wide.png"
    x = np.zeros((300, 1000, 3), np.uint8)
    x[:, ::2] = 255  # 1-pixel stripes: only an average gives mid-grey
    Image.fromarray(x).save(path)
    img = load_image(path, max_side=256)
    assert img.shape == (75, 250, 3)  # factor ceil(1000 / 256) = 4 on both sides
    assert np.all(np.abs(img.astype(int) - 128) <= 1)
    assert load_image(path, max_side=None).shape == (300, 1000, 3)
    assert load_image(path).shape == (300, 1000, 3)  # under MAX_SIDE: untouched


def test_images_with_more_than_max_pixels_are_refused_from_the_header(tmp_path):
    path = tmp_path / "bomb.png"
    _png_claiming(path, 12_000, 12_000)  # 144M pixels > MAX_PIXELS, < Pillow's own error
    assert 12_000 * 12_000 > MAX_PIXELS
    with pytest.raises(ValueError, match="12000x12000 image is too large"):
        load_image(path)
    _png_claiming(path, 30_000, 30_000)  # past Pillow's decompression-bomb error
    with pytest.raises(ValueError, match="too large"):
        check_image(path)


def test_check_image_reads_the_size_from_the_header(tmp_path):
    path = tmp_path / "claims.png"
    _png_claiming(path, 10_000, 10_000)  # the pixel data is 1x1: decoding would fail
    assert check_image(path) == (10_000, 10_000)
    with pytest.raises(ValueError, match="not a readable image"):
        load_image(path)


@st.composite
def image_case(draw):
    """Any small image (1x1 up), grey or colour, uint8 or unit float, at the pixel extremes too."""
    h, w = draw(st.integers(1, 70)), draw(st.integers(1, 70))
    channels = draw(st.sampled_from([None, 1, 3]))
    shape = (h, w) if channels is None else (h, w, channels)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    fill = draw(st.sampled_from(["random", "black", "white"]))
    x = {"random": rng.random(shape), "black": np.zeros(shape), "white": np.ones(shape)}[fill]
    if draw(st.booleans()):
        x = np.round(x * 255).astype(np.uint8)
    else:
        x = x.astype(draw(st.sampled_from([np.float32, np.float64])))
    p = draw(st.sampled_from([4, 8, 16]))
    size = draw(st.sampled_from([None, (p, p), (2 * p, 3 * p)]))
    return x, p, size


@settings(max_examples=150, deadline=None)
@given(image_case())
def test_any_image_gives_grid_many_finite_patches_inside_the_value_range(case):
    x, p, size = case
    tok = ImageTokenizer(patch_size=p, size=size)
    patches = tok.encode(x)
    rows, cols = tok.grid(x.shape[0], x.shape[1])
    channels = 1 if x.ndim == 2 else x.shape[2]
    assert patches.shape == (rows * cols, channels, p, p) and patches.dtype == np.float32
    if size is not None:
        assert (rows * p, cols * p) == size
    assert np.all(np.isfinite(patches))
    assert np.all(np.abs(patches) <= 1 / math.sqrt(p) + 1e-6)


@settings(max_examples=60, deadline=None)
@given(image_case(), st.sampled_from([np.nan, np.inf, -np.inf, -0.5, 1.5]), st.integers(0, 10**6))
def test_a_non_finite_or_out_of_range_pixel_anywhere_is_rejected(case, bad, where):
    x, p, size = case
    x = x.astype(np.float32) / (255.0 if x.dtype == np.uint8 else 1.0)
    x.reshape(-1)[where % x.size] = bad
    with pytest.raises(ValueError, match=r"finite and inside \[0, 1\]"):
        ImageTokenizer(patch_size=p, size=size).encode(x)
