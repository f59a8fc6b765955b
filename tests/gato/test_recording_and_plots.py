import numpy as np
import pytest
from PIL import Image

from gato.atomic import UMASK
from gato.plots import curves, score_bars
from gato.recording import write_gif


def test_gif_has_every_frame_in_order(tmp_path):
    frames = [np.full((6, 8, 1), 40 * i, np.uint8) for i in range(5)]
    path = write_gif(frames, tmp_path / "ep.gif", fps=10, scale=2)
    with Image.open(path) as im:
        assert im.n_frames == 5 and im.size == (16, 12)
        im.seek(3)
        assert np.asarray(im.convert("L"))[0, 0] == 120
    assert not list(tmp_path.glob("*.tmp"))


def test_gif_rejects_mixed_shapes_and_no_frames(tmp_path):
    with pytest.raises(ValueError, match="frame 1"):
        write_gif([np.zeros((4, 4), np.uint8), np.zeros((5, 4), np.uint8)], tmp_path / "x.gif")
    with pytest.raises(ValueError, match="no frames"):
        write_gif([], tmp_path / "x.gif")


def test_plots_write_png_files(tmp_path):
    bars = score_bars({"pong": 1.02, "breakout": 0.3, "cartpole": 1.0}, tmp_path / "s.png")
    rows = [{"step": s, "loss": 3.0 / (s + 1), "loss/text": 4.0 / (s + 1)} for s in range(20)]
    lines = curves(rows, ["loss", "loss/text"], tmp_path / "c.png")
    for p in (bars, lines):
        with Image.open(p) as im:
            assert im.format == "PNG" and im.size[0] > 100
    with pytest.raises(ValueError, match="none of"):
        curves(rows, ["nope"], tmp_path / "n.png")


def test_gif_gets_the_umask_default_mode_not_mkstemps_0600(tmp_path):
    path = write_gif([np.zeros((4, 4), np.uint8)] * 2, tmp_path / "a.gif")
    assert path.stat().st_mode & 0o777 == 0o666 & ~UMASK
