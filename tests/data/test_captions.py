import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gato.data import captions as C

FIX = Path(__file__).parent / "fixtures"


def test_fashion_mnist_fixture_reads_with_captions():
    images, labels = C.read_fashion_mnist(FIX / "fashion-mnist", "test")
    assert images.shape == (12, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (12,) and labels.min() >= 0 and labels.max() <= 9
    assert images.max() > 0
    assert C.fashion_caption(7) == "a photo of a sneaker"
    assert C.fashion_caption(9) == "a photo of an ankle boot"
    with pytest.raises(ValueError, match="'train' or 'test'"):
        C.read_fashion_mnist(FIX / "fashion-mnist", "val")


def test_idx_with_wrong_size_is_rejected(tmp_path):
    bad = tmp_path / "x.idx"
    bad.write_bytes(bytes([0, 0, 8, 1]) + (5).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="holds 3 bytes"):
        C.read_idx(bad)


def _user_set(tmp_path, lines):
    (tmp_path / "img").mkdir()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8) + 200).save(tmp_path / "img" / "a.png")
    path = tmp_path / "caps.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_user_caption_jsonl_loads_relative_paths(tmp_path):
    path = _user_set(tmp_path, [json.dumps({"image": "img/a.png", "caption": "a grey card"})])
    recs = C.read_caption_jsonl(path)
    assert recs == [C.CaptionRecord((tmp_path / "img" / "a.png").resolve(), "a grey card")]
    img, cap = next(C.iter_caption_images(recs))
    assert img.shape == (20, 30, 3) and cap == "a grey card"


def test_user_caption_missing_image_is_named_with_its_line(tmp_path):
    path = _user_set(
        tmp_path,
        [
            json.dumps({"image": "img/a.png", "caption": "ok"}),
            json.dumps({"image": "img/gone.png", "caption": "lost"}),
        ],
    )
    with pytest.raises(FileNotFoundError, match=r"caps\.jsonl:2: image not found: .*gone\.png"):
        C.read_caption_jsonl(path)


def test_user_caption_naming_a_file_that_is_not_an_image_is_rejected_at_import(tmp_path):
    path = _user_set(
        tmp_path,
        [
            json.dumps({"image": "img/a.png", "caption": "ok"}),
            json.dumps({"image": "img/fake.png", "caption": "not a picture"}),
        ],
    )
    (tmp_path / "img" / "fake.png").write_text("a text file with a .png name")
    with pytest.raises(ValueError, match=r"caps\.jsonl:2: .*fake\.png is not a readable image"):
        C.read_caption_jsonl(path)


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"image": "img/a.png"', "not valid JSON"),
        ('{"image": "img/a.png"}', "expected keys"),
        ('{"image": "img/a.png", "caption": ""}', "non-empty string"),
        ('{"image": 3, "caption": "x"}', "path string"),
    ],
)
def test_user_caption_malformed_line_is_rejected_with_its_number(tmp_path, line, message):
    path = _user_set(tmp_path, [json.dumps({"image": "img/a.png", "caption": "ok"}), line])
    with pytest.raises(ValueError, match=r"caps\.jsonl:2: .*" + message):
        C.read_caption_jsonl(path)


def test_scene_caption_set_saves_and_loads(tmp_path):
    arrays = C.scene_arrays("heldout", 5, seed=1, image_size=48)
    C.save_caption_set(tmp_path / "h.npz", arrays)
    back = C.load_caption_set(tmp_path / "h.npz")
    assert np.array_equal(back["images"], arrays["images"])
    assert list(back["captions"]) == list(arrays["captions"])
    assert json.loads(str(back["scenes"][0]))["objects"]
