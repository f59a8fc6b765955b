"""Procedural scenes: small RGB images of 1-3 coloured shapes, each with an exact caption.

A scene is a set of objects on a 3x3 grid of cells; each object has a shape, a
colour, a size and a cell. The caption grammar (all lower case, no final period)::

    caption  := object | object " and " object | object ", " object " and " object
    object   := article " " SIZE " " COLOUR " " SHAPE " " PLACE
    article  := "a" | "an"                 (only "a" is produced; both are parsed)
    SIZE     := small | large
    COLOUR   := red | green | blue | yellow | purple | white
    SHAPE    := circle | square | triangle | diamond
    PLACE    := at the top left | at the top | at the top right | on the left
              | in the middle | on the right | at the bottom left | at the bottom
              | at the bottom right

Objects are listed in raster order of their cells (top row first), so every scene
has exactly one caption and ``parse_caption(caption(scene)) == scene``. The image
adds only a random jitter of each object inside its cell, so the caption is the
exact ground truth of the image and caption accuracy is an exact string/scene match.

Splits (each an infinite, seeded, random-access stream):
- ``train``: objects never use a colour-shape pair from ``HELDOUT_PAIRS``;
- ``test``: same distribution as train, other random streams (held-out seeds);
- ``heldout``: every scene has at least one held-out colour-shape pair, so it measures
  generalisation to combinations never seen in training. Every colour and every shape
  still appears in train (with other partners).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "diamond")
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (50, 90, 235),
    "yellow": (235, 215, 40),
    "purple": (150, 60, 205),
    "white": (240, 240, 240),
}
SIZES = ("small", "large")
# Cell index = row * 3 + col; the phrase is what the caption says.
PLACES = (
    "at the top left", "at the top", "at the top right",
    "on the left", "in the middle", "on the right",
    "at the bottom left", "at the bottom", "at the bottom right",
)  # fmt: skip
# One held-out shape per colour, spread so that each shape keeps >= 2 colours in train.
HELDOUT_PAIRS = frozenset(
    {
        ("red", "triangle"),
        ("green", "diamond"),
        ("blue", "circle"),
        ("yellow", "square"),
        ("purple", "circle"),
        ("white", "triangle"),
    }
)
ALL_PAIRS = tuple((c, s) for c in COLOURS for s in SHAPES)
TRAIN_PAIRS = tuple(p for p in ALL_PAIRS if p not in HELDOUT_PAIRS)
SPLITS = ("train", "test", "heldout")
MAX_OBJECTS = 3
BACKGROUND = (24, 24, 24)
# Object extent as a fraction of the cell side.
EXTENT = {"small": 0.45, "large": 0.85}
SUPERSAMPLE = 4  # draw at 4x and box-downsample: smooth edges, still deterministic


@dataclass(frozen=True, order=True)
class SceneObject:
    cell: int  # first, so sorting objects gives raster order
    shape: str
    colour: str
    size: str

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; expected one of {SHAPES}")
        if self.colour not in COLOURS:
            raise ValueError(f"unknown colour {self.colour!r}; expected one of {tuple(COLOURS)}")
        if self.size not in SIZES:
            raise ValueError(f"unknown size {self.size!r}; expected one of {SIZES}")
        if not 0 <= self.cell < 9:
            raise ValueError(f"cell must be in [0, 9), got {self.cell}")

    @property
    def phrase(self) -> str:
        return f"a {self.size} {self.colour} {self.shape} {PLACES[self.cell]}"


@dataclass(frozen=True)
class Scene:
    """1-3 objects in distinct cells, kept in raster order (the canonical form)."""

    objects: tuple[SceneObject, ...]

    def __post_init__(self) -> None:
        objs = tuple(sorted(self.objects))
        if not 1 <= len(objs) <= MAX_OBJECTS:
            raise ValueError(f"a scene has 1-{MAX_OBJECTS} objects, got {len(objs)}")
        cells = [o.cell for o in objs]
        if len(set(cells)) != len(cells):
            raise ValueError(f"two objects share a cell: {cells}")
        object.__setattr__(self, "objects", objs)

    def to_dict(self) -> dict:
        return {"objects": [vars(o).copy() for o in self.objects]}

    @classmethod
    def from_dict(cls, d: dict) -> Scene:
        return cls(tuple(SceneObject(**o) for o in d["objects"]))


def caption(scene: Scene) -> str:
    """The one caption of a scene (see the grammar in the module docstring)."""
    phrases = [o.phrase for o in scene.objects]
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


_OBJECT_RE = re.compile(
    r"an? (?P<size>{}) (?P<colour>{}) (?P<shape>{}) (?P<place>{})".format(
        "|".join(SIZES), "|".join(COLOURS), "|".join(SHAPES), "|".join(PLACES)
    )
)


def parse_caption(text: str) -> Scene:
    """Parse a caption of the grammar back to its Scene; ValueError if it does not parse.

    Case, surrounding whitespace and one final period are forgiven (model output).
    """
    t = " ".join(text.strip().lower().split()).removesuffix(".")
    parts = re.split(r", | and ", t)
    objects = []
    for part in parts:
        m = _OBJECT_RE.fullmatch(part)
        if m is None:
            raise ValueError(f"caption does not follow the scene grammar: {part!r} in {text!r}")
        objects.append(
            SceneObject(
                cell=PLACES.index(m["place"]),
                shape=m["shape"],
                colour=m["colour"],
                size=m["size"],
            )
        )
    return Scene(tuple(objects))


def sample_scene(rng: np.random.Generator, split: str) -> Scene:
    """Draw a random scene of the given split (see the module docstring)."""
    if split not in SPLITS:
        raise ValueError(f"unknown scene split {split!r}; expected one of {SPLITS}")
    n = int(rng.integers(1, MAX_OBJECTS + 1))
    cells = rng.choice(9, size=n, replace=False)
    pool = TRAIN_PAIRS if split != "heldout" else ALL_PAIRS
    pairs = [pool[int(i)] for i in rng.integers(0, len(pool), size=n)]
    if split == "heldout":
        held = sorted(HELDOUT_PAIRS)
        pairs[int(rng.integers(0, n))] = held[int(rng.integers(0, len(held)))]
    sizes = [SIZES[int(i)] for i in rng.integers(0, len(SIZES), size=n)]
    return Scene(
        tuple(
            SceneObject(cell=int(c), shape=s, colour=col, size=sz)
            for c, (col, s), sz in zip(cells, pairs, sizes, strict=True)
        )
    )


def render(scene: Scene, image_size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw a scene; returns uint8 (image_size, image_size, 3).

    Each object is jittered inside its cell by ``rng``; it never leaves its cell, so
    the caption's places stay exact.
    """
    _check_size(image_size)
    big = image_size * SUPERSAMPLE
    cell = big / 3
    img = Image.new("RGB", (big, big), BACKGROUND)
    draw = ImageDraw.Draw(img)
    for o in scene.objects:
        row, col = divmod(o.cell, 3)
        extent = EXTENT[o.size] * cell
        slack = (cell - extent) / 2  # how far the centre may move and stay inside the cell
        cx = (col + 0.5) * cell + rng.uniform(-slack, slack)
        cy = (row + 0.5) * cell + rng.uniform(-slack, slack)
        h = extent / 2
        box = (cx - h, cy - h, cx + h, cy + h)
        fill = COLOURS[o.colour]
        if o.shape == "circle":
            draw.ellipse(box, fill=fill)
        elif o.shape == "square":
            s = h * 0.85  # a square of the same extent looks bigger than a circle
            draw.rectangle((cx - s, cy - s, cx + s, cy + s), fill=fill)
        elif o.shape == "triangle":
            draw.polygon([(cx, cy - h), (cx + h, cy + h), (cx - h, cy + h)], fill=fill)
        else:  # diamond
            draw.polygon([(cx, cy - h), (cx + h, cy), (cx, cy + h), (cx - h, cy)], fill=fill)
    img = img.resize((image_size, image_size), Image.BOX)
    return np.asarray(img, dtype=np.uint8).copy()


@dataclass(frozen=True)
class SceneExample:
    image: np.ndarray  # uint8 (H, W, 3)
    caption: str
    scene: Scene


def example(split: str, index: int, seed: int = 0, image_size: int = 64) -> SceneExample:
    """The ``index``-th example of a split: a pure function of (split, index, seed, size)."""
    if index < 0:
        raise ValueError(f"scene index must be >= 0, got {index}")
    if split not in SPLITS:
        raise ValueError(f"unknown scene split {split!r}; expected one of {SPLITS}")
    # One independent random stream per (seed, split, index): random access, no overlap
    # between splits, and the same example whatever order examples are asked for in.
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    scene = sample_scene(rng, split)
    return SceneExample(render(scene, image_size, rng), caption(scene), scene)


def stream(
    split: str, seed: int = 0, image_size: int = 64, start: int = 0
) -> Iterator[SceneExample]:
    """Infinite iterator over a split, from ``start``."""
    i = start
    while True:
        yield example(split, i, seed, image_size)
        i += 1


def score_caption(text: str, scene: Scene) -> tuple[bool, int]:
    """(exact match, number of true objects described exactly) for a predicted caption.

    A caption outside the grammar scores (False, 0).
    """
    try:
        pred = parse_caption(text)
    except ValueError:
        return False, 0
    hits = len(set(pred.objects) & set(scene.objects))
    return pred == scene, hits


def caption_accuracy(predictions: Sequence[str], truths: Sequence[Scene]) -> dict[str, float]:
    """Exact-match rate and object recall (true objects described exactly) over a set."""
    if len(predictions) != len(truths) or not truths:
        raise ValueError(
            f"need equal, non-zero numbers of predictions ({len(predictions)}) "
            f"and scenes ({len(truths)})"
        )
    exact = hits = total = 0
    for text, scene in zip(predictions, truths, strict=True):
        e, h = score_caption(text, scene)
        exact += e
        hits += h
        total += len(scene.objects)
    return {"exact": exact / len(truths), "object_recall": hits / total}


def questions(scene: Scene, rng: np.random.Generator) -> list[tuple[str, str]]:
    """Question/answer pairs whose answers follow exactly from the scene.

    Used to build text dialogues about scenes (the scene is given as its caption).
    """
    objs = scene.objects
    n = len(objs)
    qa = [("How many objects are there?", ("One.", "Two.", "Three.")[n - 1])]
    for o in objs:
        place = PLACES[o.cell]
        qa.append((f"What is {place}?", f"A {o.size} {o.colour} {o.shape}."))
        qa.append((f"What colour is the {o.shape} {place}?", f"{o.colour.capitalize()}."))
        qa.append((f"Where is the {o.size} {o.colour} {o.shape}?", f"{place.capitalize()}."))
    # A yes/no question about a random colour-shape pair (answer from the scene).
    colour, shape = ALL_PAIRS[int(rng.integers(0, len(ALL_PAIRS)))]
    present = any(o.colour == colour and o.shape == shape for o in objs)
    qa.append((f"Is there a {colour} {shape}?", "Yes." if present else "No."))
    empty = [c for c in range(9) if c not in {o.cell for o in objs}]
    if empty:
        c = empty[int(rng.integers(0, len(empty)))]
        qa.append((f"What is {PLACES[c]}?", "Nothing."))
    return qa


def _check_size(image_size: int) -> None:
    if image_size < 48 or image_size % 16:
        raise ValueError(f"scene image size must be a multiple of 16 and >= 48, got {image_size}")
