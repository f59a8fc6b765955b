import numpy as np
import pytest

from gato.data import scenes as S

TWO = "a small red circle at the top left and a large blue square in the middle"


def test_caption_parse_round_trip_gives_the_same_scene():
    for split in S.SPLITS:
        for i in range(300):
            ex = S.example(split, i, seed=3, image_size=64)
            assert S.caption(ex.scene) == ex.caption
            assert S.parse_caption(ex.caption) == ex.scene


def test_every_scene_of_the_grammar_round_trips():
    # All single objects, exhaustively: 4 shapes x 6 colours x 2 sizes x 9 cells.
    for colour, shape in S.ALL_PAIRS:
        for size in S.SIZES:
            for cell in range(9):
                scene = S.Scene((S.SceneObject(cell, shape, colour, size),))
                assert S.parse_caption(S.caption(scene)) == scene


def test_parse_forgives_case_spacing_and_final_period_only():
    scene = S.parse_caption(
        "  A small Red circle at the top left  and a large blue square in the middle."
    )
    assert S.caption(scene) == TWO
    bad_captions = [
        "a small red circle",
        "a tiny red circle in the middle",
        "a red small circle in the middle",
        "a small red circle in the middle and",
        "",
    ]
    for bad in bad_captions:
        with pytest.raises(ValueError):
            S.parse_caption(bad)


def test_two_objects_in_one_cell_is_rejected():
    with pytest.raises(ValueError, match="share a cell"):
        S.parse_caption("a small red circle in the middle and a large blue square in the middle")


def test_heldout_pairs_never_appear_in_train_or_test_and_always_in_heldout():
    for i in range(2000):
        for split in ("train", "test"):
            pairs = {(o.colour, o.shape) for o in S.example(split, i, seed=0).scene.objects}
            assert not pairs & S.HELDOUT_PAIRS
    for i in range(500):
        pairs = {(o.colour, o.shape) for o in S.example("heldout", i, seed=0).scene.objects}
        assert pairs & S.HELDOUT_PAIRS


def test_train_still_shows_every_colour_and_every_shape():
    seen = set()
    for i in range(500):
        seen |= {(o.colour, o.shape) for o in S.example("train", i).scene.objects}
    assert {c for c, _ in seen} == set(S.COLOURS)
    assert {s for _, s in seen} == set(S.SHAPES)
    assert seen == set(S.TRAIN_PAIRS)


def test_same_seed_gives_same_images_and_other_seed_differs():
    a = [S.example("train", i, seed=7, image_size=96) for i in range(20)]
    b = [S.example("train", i, seed=7, image_size=96) for i in reversed(range(20))][::-1]
    c = [S.example("train", i, seed=8, image_size=96) for i in range(20)]
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.image, y.image) and x.caption == y.caption
    assert any(not np.array_equal(x.image, z.image) for x, z in zip(a, c, strict=True))


def test_image_shape_dtype_and_objects_drawn_in_their_cells():
    ex = S.example("test", 5, seed=1, image_size=48)
    assert ex.image.shape == (48, 48, 3) and ex.image.dtype == np.uint8
    for i in range(200):
        ex = S.example("train", i, image_size=96)
        img = ex.image.astype(int)
        for cell in range(9):
            r, c = divmod(cell, 3)
            block = img[r * 32 : (r + 1) * 32, c * 32 : (c + 1) * 32]
            drawn = np.abs(block - np.array(S.BACKGROUND)).sum(-1) > 30
            objs = [o for o in ex.scene.objects if o.cell == cell]
            if not objs:
                assert not drawn.any()
            else:
                # the object's colour is the most frequent colour drawn in the cell
                colours, counts = np.unique(block[drawn], axis=0, return_counts=True)
                assert tuple(colours[counts.argmax()]) == S.COLOURS[objs[0].colour]


def test_image_size_must_divide_by_16():
    with pytest.raises(ValueError, match="multiple of 16"):
        S.example("train", 0, image_size=50)


def test_score_caption_is_exact():
    ex = S.example("test", 11, seed=2)
    assert S.score_caption(ex.caption, ex.scene) == (True, len(ex.scene.objects))
    assert S.score_caption("not a caption", ex.scene) == (False, 0)
    o = ex.scene.objects[0]
    other = "green" if o.colour != "green" else "red"
    wrong = S.Scene((S.SceneObject(o.cell, o.shape, other, o.size),) + ex.scene.objects[1:])
    exact, hits = S.score_caption(S.caption(wrong), ex.scene)
    assert not exact and hits == len(ex.scene.objects) - 1


def test_scene_questions_answers_follow_from_the_scene():
    rng = np.random.default_rng(0)
    scene = S.parse_caption(TWO)
    qa = dict(S.questions(scene, rng))
    assert qa["How many objects are there?"] == "Two."
    assert qa["What colour is the square in the middle?"] == "Blue."
    assert qa["Where is the small red circle?"] == "At the top left."
    assert qa["What is in the middle?"] == "A large blue square."


def test_caption_accuracy_counts_exact_matches_and_objects():
    exs = [S.example("test", i, seed=9) for i in range(4)]
    truths = [e.scene for e in exs]
    preds = [e.caption for e in exs[:3]] + ["garbage"]
    acc = S.caption_accuracy(preds, truths)
    assert acc["exact"] == 0.75
    n = sum(len(t.objects) for t in truths)
    assert acc["object_recall"] == (n - len(truths[3].objects)) / n
    with pytest.raises(ValueError, match="equal"):
        S.caption_accuracy(preds[:2], truths)
