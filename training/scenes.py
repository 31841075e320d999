"""Procedural "street at dusk" scenes with pixel-exact concept masks.

Every scene is a row of buildings (with windows and a door each) under a sky whose colours
follow the time of day, a strip of grass, a road with lane markings, a few trees and up to
:data:`MAX_LAMPS` street lamps. A lamp is a dark pole with a head a few pixels wide; a lit lamp's
head is bright and it casts a warm glow on what is around it (a halo round the head and a pool
of light on the road). The glow is *not* a label: pixels under it keep the label of what they
show, so an analysis can measure the light that remains when a lamp is removed.

Labels are exact because the renderer paints labels and colours in one pass (a painter's
algorithm over object slots); nothing is estimated. Rendering is vectorised over scenes, in
chunks of :data:`CHUNK` scenes each drawn from its own seeded stream, so scene ``i`` of a seed
is the same whatever ``n`` is asked for.

Geometry is defined on a 64-unit square and sampled at the pixel centres of the chosen size, so
32, 64 and 128 px renderings show the same scene at different resolutions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields

import numpy as np

from training.errors import InputError

CONCEPTS: tuple[str, ...] = (
    "sky",
    "building",
    "window",
    "door",
    "road",
    "grass",
    "tree",
    "lamp",
)
"""Concept names; a concept's label id is its index."""

CONCEPT_COLORS = np.array(
    [
        [110, 170, 235],  # sky
        [150, 90, 70],  # building
        [250, 220, 60],  # window
        [120, 40, 150],  # door
        [90, 90, 90],  # road
        [80, 190, 70],  # grass
        [20, 100, 40],  # tree
        [240, 30, 30],  # lamp
    ],
    dtype=np.uint8,
)
"""One display colour per concept, for label maps (see :func:`colorize_labels`)."""

SIZES = (32, 64, 128)
MAX_LAMPS = 4
CHUNK = 256
HELD_OUT_SEED = 987_654_321
"""Seed of the held-out "real" scenes; training data modules refuse to use it."""

_UNITS = 64.0  # scene geometry lives on a 64 x 64 unit square
_BUILDINGS = 6
_TREES = 3
_LABEL = {name: i for i, name in enumerate(CONCEPTS)}

# Object slots painted by the renderer; each slot has one colour per scene and one label.
_SKY, _GRASS, _ROAD, _MARKING = 0, 1, 2, 3
_BUILDING = 4
_WINDOW_LIT = _BUILDING + _BUILDINGS
_WINDOW_DARK = _WINDOW_LIT + _BUILDINGS
_DOOR = _WINDOW_DARK + _BUILDINGS
_TRUNK = _DOOR + _BUILDINGS
_CROWN = _TRUNK + _TREES
_POLE = _CROWN + _TREES
_HEAD = _POLE + MAX_LAMPS
_SLOTS = _HEAD + MAX_LAMPS
_SLOT_LABEL = np.empty(_SLOTS, dtype=np.int64)
_SLOT_LABEL[[_SKY, _GRASS, _ROAD, _MARKING]] = [
    _LABEL["sky"],
    _LABEL["grass"],
    _LABEL["road"],
    _LABEL["road"],
]
_SLOT_LABEL[_BUILDING:_WINDOW_LIT] = _LABEL["building"]
_SLOT_LABEL[_WINDOW_LIT:_DOOR] = _LABEL["window"]
_SLOT_LABEL[_DOOR:_TRUNK] = _LABEL["door"]
_SLOT_LABEL[_TRUNK:_POLE] = _LABEL["tree"]
_SLOT_LABEL[_POLE:_SLOTS] = _LABEL["lamp"]

_BUILDING_PALETTE = np.array(
    [
        [0.62, 0.32, 0.25],  # brick
        [0.80, 0.71, 0.55],  # beige
        [0.56, 0.57, 0.61],  # concrete
        [0.44, 0.50, 0.64],  # blue-grey
        [0.72, 0.56, 0.40],  # sandstone
        [0.52, 0.38, 0.47],  # mauve
    ]
)
_DOOR_PALETTE = np.array(
    [[0.33, 0.20, 0.11], [0.18, 0.23, 0.36], [0.47, 0.14, 0.12], [0.14, 0.31, 0.20]]
)
_LIT_HEAD = np.array([1.0, 0.97, 0.82])
_LIT_WINDOW = np.array([1.0, 0.84, 0.46])
_GLOW_COLOR = np.array([1.0, 0.78, 0.45])


@dataclass(frozen=True)
class Scenes:
    """A batch of rendered scenes. Unpacks as ``images, labels = render_scenes(...)``.

    Attributes
    ----------
    images:
        float32 (N, 3, H, W) in [-1, 1].
    labels:
        int64 (N, H, W), the index into :data:`CONCEPTS` of what each pixel shows.
    glow:
        float32 (N, H, W) in [0, 1], the strength of the lamp light added to each pixel (0 where
        no lit lamp shines). Not a label: ``labels`` ignore it.
    lamp_index:
        int8 (N, H, W), which lamp slot (0 .. MAX_LAMPS - 1) a lamp pixel belongs to, -1 elsewhere.
    lamp_present, lamp_lit:
        bool (N, MAX_LAMPS): which lamp slots hold a lamp, and which of those are lit.
    lamp_boxes:
        int64 (N, MAX_LAMPS, 4), each lamp's pixel box ``(x0, y0, x1, y1)`` (end exclusive),
        -1 for absent lamps.
    time_of_day:
        float32 (N,), 0 at sunset to 1 at night.
    """

    images: np.ndarray
    labels: np.ndarray
    glow: np.ndarray
    lamp_index: np.ndarray
    lamp_present: np.ndarray
    lamp_lit: np.ndarray
    lamp_boxes: np.ndarray
    time_of_day: np.ndarray

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.images, self.labels))

    @property
    def size(self) -> int:
        """Side of the images in pixels."""
        return int(self.images.shape[-1])

    @property
    def lamp_count(self) -> np.ndarray:
        """int64 (N,): lamps in each scene."""
        return self.lamp_present.sum(axis=1).astype(np.int64)

    @property
    def any_lamp_lit(self) -> np.ndarray:
        """bool (N,): whether at least one lamp of the scene is lit."""
        return np.asarray(self.lamp_lit.any(axis=1))

    def subset(self, index: slice | np.ndarray | list[int]) -> Scenes:
        """The scenes selected by ``index`` (a slice, indices or a boolean mask)."""
        return Scenes(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


def render_scenes(
    n: int, *, size: int = 64, seed: int = 0, glow: bool = True, start: int = 0
) -> Scenes:
    """Render ``n`` scenes of ``size`` x ``size`` pixels, the same ones for the same ``seed``.

    ``size`` is 32, 64 or 128. Scene ``i`` of a seed depends only on ``(seed, i)``: ``start``
    skips the first scenes, so a large set can be rendered block by block. With ``glow=False``
    the lamps cast no light (labels, geometry and all other colours are unchanged), which shows
    what the glow adds.
    """
    for name, value, low in (("n", n, 1), ("seed", seed, 0), ("start", start, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise InputError(f"{name} must be an integer >= {low}, got {value!r}")
    if size not in SIZES:
        raise InputError(f"size must be one of {SIZES}, got {size!r}")
    first, last = start // CHUNK, (start + n - 1) // CHUNK
    chunks = [
        _render_chunk(np.random.default_rng([int(seed), k]), CHUNK, size, glow)
        for k in range(first, last + 1)
    ]
    scenes = chunks[0] if len(chunks) == 1 else _concatenate(chunks)
    offset = start - first * CHUNK
    if offset == 0 and n == CHUNK * len(chunks):
        return scenes
    # a copy, so that a few scenes do not keep whole chunks alive
    return scenes.subset(np.arange(offset, offset + n))


def held_out_scenes(n: int = 256, *, size: int = 64) -> Scenes:
    """The fixed held-out "real" scenes (seed :data:`HELD_OUT_SEED`), never used in training."""
    return render_scenes(n, size=size, seed=HELD_OUT_SEED)


def held_out_sample(n: int, *, size: int = 64, pool: int = 64 * CHUNK, seed: int = 0) -> Scenes:
    """``n`` held-out scenes drawn at random (without replacement) from the first ``pool``.

    The renderer draws some colour jitter (the sky's) once per chunk of :data:`CHUNK` scenes, so
    ``n`` consecutive scenes show only ``n / CHUNK`` of those draws and two consecutive sets
    differ by more than sampling. A sample spread over many chunks (64 by default, or as many as
    ``n`` needs) stands for the real distribution, as the training set's 100 chunks do; this is
    the reference that generated images are compared with. Rendered chunk by chunk, so memory
    holds the chosen scenes only.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n must be an integer >= 1, got {n!r}")
    chunks = max(-(-int(pool) // CHUNK), -(-int(n) // CHUNK))
    chosen = np.random.default_rng([int(seed), 1]).permutation(chunks * CHUNK)[:n]
    parts: list[Scenes] = []
    where = np.empty(n, dtype=np.int64)  # position in ``chosen`` of each scene appended
    filled = 0
    for k in range(chunks):
        inside = np.flatnonzero(chosen // CHUNK == k)
        if inside.size == 0:
            continue
        block = render_scenes(CHUNK, size=size, seed=HELD_OUT_SEED, start=k * CHUNK)
        parts.append(block.subset(chosen[inside] - k * CHUNK))
        where[filled : filled + inside.size] = inside
        filled += inside.size
    return _concatenate(parts).subset(np.argsort(where))  # back in the order of ``chosen``


def _concatenate(parts: list[Scenes]) -> Scenes:
    """The scenes of ``parts`` one after the other."""
    return Scenes(
        **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Scenes)}
    )


def colorize_labels(labels: np.ndarray) -> np.ndarray:
    """Label maps (N, H, W) or (H, W) as uint8 RGB pictures (..., 3) in :data:`CONCEPT_COLORS`."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= len(CONCEPTS)):
        raise InputError(f"labels must lie in 0..{len(CONCEPTS) - 1}")
    return CONCEPT_COLORS[labels]


def concept_shares(labels: np.ndarray) -> np.ndarray:
    """float64 (N, C): the share of each image's pixels that each concept covers."""
    labels = np.asarray(labels)
    flat = labels.reshape(len(labels), -1)
    counts = np.stack([(flat == c).sum(axis=1) for c in range(len(CONCEPTS))], axis=1)
    return counts / flat.shape[1]


def _jitter(rng: np.random.Generator, base: np.ndarray, spread: float, shape: tuple[int, ...]):
    return np.clip(base + rng.uniform(-spread, spread, (*shape, 3)), 0.0, 1.0)


def _between(coord: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Whether pixel-centre coordinates (P,) lie in [low, high) for each scene: (n, P)."""
    return (coord >= low[:, None]) & (coord < high[:, None])


def _render_chunk(rng: np.random.Generator, n: int, size: int, glow: bool) -> Scenes:
    centres = (np.arange(size) + 0.5) * (_UNITS / size)  # pixel centres in scene units
    colors = np.zeros((n, _SLOTS, 3))
    time = rng.uniform(0.0, 1.0, n)
    daylight = (1.0 - 0.6 * time)[:, None]  # surfaces lit by the sky darken towards night
    ground = rng.uniform(36.0, 44.0, n)  # base of the buildings, top of the grass
    road_top = ground + rng.uniform(4.0, 9.0, n)

    # Sky: a vertical gradient from zenith to horizon, warm at sunset, dark blue at night.
    mix = time[:, None]
    zenith = (1 - mix) * [0.30, 0.42, 0.72] + mix * [0.03, 0.05, 0.15]
    horizon = (1 - mix) * [0.98, 0.62, 0.36] + mix * [0.24, 0.17, 0.35]
    zenith = _jitter(rng, zenith, 0.05, ())
    horizon = _jitter(rng, horizon, 0.05, ())
    height = np.clip(centres[None, :] / ground[:, None], 0.0, 1.0)[..., None]  # (n, H, 1)
    sky = zenith[:, None, :] * (1 - height) + horizon[:, None, :] * height  # (n, H, 3)

    slots = np.full((n, size, size), _SKY, dtype=np.int8)
    below_ground = _between(centres, ground, np.full(n, np.inf))
    on_road = _between(centres, road_top, np.full(n, np.inf))
    slots[np.broadcast_to(below_ground[:, :, None], slots.shape)] = _GRASS
    slots[np.broadcast_to(on_road[:, :, None], slots.shape)] = _ROAD
    colors[:, _GRASS] = _jitter(rng, np.array([0.30, 0.56, 0.22]), 0.07, (n,)) * daylight
    colors[:, _ROAD] = np.clip(
        rng.uniform(0.30, 0.46, (n, 1)) + rng.uniform(-0.03, 0.03, (n, 3)), 0, 1
    )
    colors[:, _ROAD] *= daylight

    # Lane markings: dashes along a thin band in the lower half of the road.
    lane_y = road_top + 0.55 * (_UNITS - road_top)
    lane_rows = _between(centres, lane_y - 0.6, lane_y + 0.7)
    dash = ((centres[None, :] + rng.uniform(0, 10, (n, 1))) % 10.0) < 5.0
    slots[lane_rows[:, :, None] & dash[:, None, :]] = _MARKING
    colors[:, _MARKING] = _jitter(rng, np.array([0.88, 0.86, 0.74]), 0.05, (n,)) * (
        1 - 0.35 * time[:, None]
    )

    _paint_buildings(rng, slots, colors, centres, ground, time, daylight)
    _paint_trees(rng, slots, colors, centres, ground, road_top, daylight)
    lamps = _paint_lamps(rng, slots, colors, centres, road_top, time)

    labels = _SLOT_LABEL[slots]
    # One gather paints every pixel: the sky gets one extra colour slot per row.
    palette = np.concatenate([colors, sky], axis=1).astype(np.float32).transpose(0, 2, 1)
    index = np.where(slots == _SKY, _SLOTS + np.arange(size)[None, :, None], slots)
    index = index.reshape(n, 1, -1).astype(np.intp)
    gathered = np.take_along_axis(palette, np.broadcast_to(index, (n, 3, index.shape[-1])), 2)
    pixels: np.ndarray = gathered.reshape(n, 3, size, size)
    light: np.ndarray = np.zeros((n, size, size), dtype=np.float32)
    if glow:
        light = _glow(rng, lamps, centres, time)
        # "screen" blending brightens towards white and never leaves [0, 1]
        tint = _GLOW_COLOR.astype(np.float32)[None, :, None, None]
        pixels = 1.0 - (1.0 - pixels) * (1.0 - light[:, None] * tint)
    images = pixels * 2.0 - 1.0

    lamp_index = np.full((n, size, size), -1, dtype=np.int8)
    lamp_pixels = slots >= _POLE
    lamp_index[lamp_pixels] = ((slots[lamp_pixels] - _POLE) % MAX_LAMPS).astype(np.int8)
    return Scenes(
        images=images,
        labels=labels,
        glow=light,
        lamp_index=lamp_index,
        lamp_present=lamps["present"],
        lamp_lit=lamps["lit"],
        lamp_boxes=_boxes(lamp_index),
        time_of_day=time.astype(np.float32),
    )


def _paint_buildings(
    rng: np.random.Generator,
    slots: np.ndarray,
    colors: np.ndarray,
    centres: np.ndarray,
    ground: np.ndarray,
    time: np.ndarray,
    daylight: np.ndarray,
) -> None:
    n = slots.shape[0]
    shape = (n, _BUILDINGS)
    widths = rng.uniform(10.0, 20.0, shape)
    gaps = rng.uniform(0.0, 5.0, shape)
    left = rng.uniform(-6.0, 0.0, (n, 1)) + np.cumsum(widths + gaps, axis=1) - widths - gaps
    right = left + widths
    top = np.maximum(ground[:, None] - rng.uniform(12.0, 30.0, shape), 3.0)
    palette = _BUILDING_PALETTE[rng.integers(0, len(_BUILDING_PALETTE), shape)]
    colors[:, _BUILDING:_WINDOW_LIT] = (
        np.clip(palette + rng.uniform(-0.05, 0.05, (*shape, 3)), 0, 1) * daylight[:, :, None]
    )
    colors[:, _WINDOW_LIT:_WINDOW_DARK] = _jitter(rng, _LIT_WINDOW, 0.04, shape)
    glass = (1 - time[:, None]) * [0.36, 0.46, 0.60] + time[:, None] * [0.08, 0.10, 0.17]
    colors[:, _WINDOW_DARK:_DOOR] = _jitter(rng, glass[:, None, :], 0.04, shape)
    door_palette = _DOOR_PALETTE[rng.integers(0, len(_DOOR_PALETTE), shape)]
    colors[:, _DOOR:_TRUNK] = np.clip(
        door_palette + rng.uniform(-0.04, 0.04, (*shape, 3)), 0, 1
    ) * (1 - 0.4 * time[:, None, None])

    # Windows: a centred grid above the door level; each window lit with a time-dependent odds.
    window_w = rng.integers(2, 4, shape).astype(float)
    window_h = rng.integers(3, 5, shape).astype(float)
    pitch_x = window_w + rng.integers(2, 4, shape)
    pitch_y = window_h + rng.integers(2, 4, shape)
    inner_w = widths - 4.0
    cols = np.floor((inner_w - window_w) / pitch_x) + 1
    grid_left = left + 2.0 + (inner_w - ((cols - 1) * pitch_x + window_w)) / 2.0
    area_h = ground[:, None] - 8.0 - (top + 2.0)
    window_rows = np.where(area_h >= window_h, np.floor((area_h - window_h) / pitch_y) + 1, 0)
    lit_odds = 0.15 + 0.55 * time
    lit_table = rng.random((*shape, 12, 12)) < lit_odds[:, None, None, None]
    door_w = rng.uniform(3.0, 4.5, shape)
    door_h = rng.uniform(5.0, 7.5, shape)
    door_left = left + 2.0 + rng.uniform(0.0, 1.0, shape) * (widths - 4.0 - door_w)

    for b in range(_BUILDINGS):
        wall = (
            _between(centres, top[:, b], ground)[:, :, None]
            & _between(centres, left[:, b], right[:, b])[:, None, :]
        )
        slots[wall] = _BUILDING + b
        local_x = centres[None, :] - grid_left[:, b, None]
        col = np.floor(local_x / pitch_x[:, b, None])
        in_x = (
            (local_x >= 0)
            & (col < cols[:, b, None])
            & (local_x - col * pitch_x[:, b, None] < window_w[:, b, None])
        )
        local_y = centres[None, :] - (top[:, b, None] + 2.0)
        row = np.floor(local_y / pitch_y[:, b, None])
        in_y = (
            (local_y >= 0)
            & (row < window_rows[:, b, None])
            & (local_y - row * pitch_y[:, b, None] < window_h[:, b, None])
        )
        window = in_y[:, :, None] & in_x[:, None, :]
        row_i = np.clip(row, 0, 11).astype(np.intp)
        col_i = np.clip(col, 0, 11).astype(np.intp)
        scene, y, x = np.nonzero(window)
        lit = lit_table[scene, b, row_i[scene, y], col_i[scene, x]]
        slots[scene, y, x] = np.where(lit, _WINDOW_LIT + b, _WINDOW_DARK + b)
        door = (
            _between(centres, ground - door_h[:, b], ground)[:, :, None]
            & _between(centres, door_left[:, b], door_left[:, b] + door_w[:, b])[:, None, :]
        )
        slots[door] = _DOOR + b


def _paint_trees(
    rng: np.random.Generator,
    slots: np.ndarray,
    colors: np.ndarray,
    centres: np.ndarray,
    ground: np.ndarray,
    road_top: np.ndarray,
    daylight: np.ndarray,
) -> None:
    n = slots.shape[0]
    shape = (n, _TREES)
    present = np.arange(_TREES)[None, :] < rng.choice(4, size=(n, 1), p=[0.2, 0.35, 0.3, 0.15])
    x = rng.uniform(2.0, 62.0, shape)
    base = ground[:, None] + rng.uniform(0.3, 0.9, shape) * (road_top - ground)[:, None]
    trunk_top = base - rng.uniform(3.0, 7.0, shape)
    conifer = rng.random(shape) < 0.4
    radius_x = rng.uniform(4.0, 7.0, shape)
    radius_y = rng.uniform(4.0, 7.5, shape)
    crown_height = rng.uniform(10.0, 16.0, shape)
    colors[:, _TRUNK:_CROWN] = (
        _jitter(rng, np.array([0.36, 0.24, 0.14]), 0.05, shape) * daylight[:, :, None]
    )
    greens = np.where(conifer[..., None], [0.10, 0.33, 0.20], [0.18, 0.44, 0.16])
    colors[:, _CROWN:_POLE] = _jitter(rng, greens, 0.06, shape) * daylight[:, :, None]
    u = centres[None, None, :]
    v = centres[None, :, None]
    for t in range(_TREES):
        keep = present[:, t, None, None]
        trunk = (
            _between(centres, trunk_top[:, t], base[:, t])[:, :, None]
            & _between(centres, x[:, t] - 1.0, x[:, t] + 1.0)[:, None, :]
        )
        slots[trunk & keep] = _TRUNK + t
        cx = x[:, t, None, None]
        centre_y = (trunk_top[:, t] - 0.8 * radius_y[:, t])[:, None, None]
        round_crown = ((u - cx) / radius_x[:, t, None, None]) ** 2 + (
            (v - centre_y) / radius_y[:, t, None, None]
        ) ** 2 <= 1.0
        apex = (trunk_top[:, t] + 1.0 - crown_height[:, t])[:, None, None]
        depth = (v - apex) / crown_height[:, t, None, None]  # 0 at the apex, 1 at the bottom
        cone = (depth >= 0) & (depth <= 1) & (np.abs(u - cx) <= depth * radius_x[:, t, None, None])
        crown = np.where(conifer[:, t, None, None], cone, round_crown)
        slots[crown & keep] = _CROWN + t


def _paint_lamps(
    rng: np.random.Generator,
    slots: np.ndarray,
    colors: np.ndarray,
    centres: np.ndarray,
    road_top: np.ndarray,
    time: np.ndarray,
) -> dict[str, np.ndarray]:
    n = slots.shape[0]
    shape = (n, MAX_LAMPS)
    count = rng.choice(MAX_LAMPS + 1, size=(n, 1), p=[0.1, 0.15, 0.3, 0.3, 0.15])
    # Each lamp takes its own quarter of the width, so two lamps never overlap.
    rank = np.argsort(np.argsort(rng.random(shape), axis=1), axis=1)
    present = rank < count
    x = np.arange(MAX_LAMPS)[None, :] * 16.0 + rng.uniform(4.0, 12.0, shape)
    base = road_top[:, None] + rng.uniform(0.5, 2.5, shape)
    pole_top = np.maximum(base - rng.uniform(17.0, 25.0, shape), 5.0)
    head_w = rng.uniform(4.5, 6.5, shape)
    head_h = rng.uniform(2.5, 3.5, shape)
    lights_on = rng.random((n, 1)) < 0.6  # independent of the time of day: no shortcut
    lit = present & lights_on & (rng.random(shape) < 0.8)
    first = np.argmax(present, axis=1)
    lit[np.arange(n), first] |= lights_on[:, 0] & present[np.arange(n), first]

    pole_color = np.where(rng.random((n, 1, 1)) < 0.5, [0.10, 0.10, 0.12], [0.10, 0.20, 0.15])
    colors[:, _POLE:_HEAD] = np.clip(pole_color + rng.uniform(-0.03, 0.03, (*shape, 3)), 0, 1)
    unlit_head = _jitter(rng, np.array([0.55, 0.57, 0.60]), 0.05, shape) * (
        1 - 0.4 * time[:, None, None]
    )
    colors[:, _HEAD:_SLOTS] = np.where(
        lit[..., None], _jitter(rng, _LIT_HEAD, 0.02, shape), unlit_head
    )
    for k in range(MAX_LAMPS):
        keep = present[:, k, None, None]
        pole = (
            _between(centres, pole_top[:, k], base[:, k])[:, :, None]
            & _between(centres, x[:, k] - 1.0, x[:, k] + 1.0)[:, None, :]
        )
        slots[pole & keep] = _POLE + k
        head = (
            _between(centres, pole_top[:, k] - head_h[:, k], pole_top[:, k])[:, :, None]
            & _between(centres, x[:, k] - head_w[:, k] / 2, x[:, k] + head_w[:, k] / 2)[:, None, :]
        )
        slots[head & keep] = _HEAD + k
    return {
        "present": present,
        "lit": lit,
        "x": x,
        "base": base,
        "head_y": pole_top - head_h / 2,
    }


def _glow(
    rng: np.random.Generator,
    lamps: dict[str, np.ndarray],
    centres: np.ndarray,
    time: np.ndarray,
) -> np.ndarray:
    """Light of the lit lamps, (n, H, W) in [0, 1]: a halo round each head, a pool below it."""
    shape = (len(time), MAX_LAMPS)
    halo_sigma = rng.uniform(4.0, 6.0, shape)
    pool_sigma_x = rng.uniform(5.0, 8.0, shape)
    pool_sigma_y = rng.uniform(1.5, 2.5, shape)
    strength = 0.45 + 0.3 * time
    # Both lights are separable Gaussians: outer products of a row and a column profile.
    dx = centres[None, None, :] - lamps["x"][:, :, None]  # (n, lamps, W)
    halo_x = np.exp(-(dx**2) / (2 * halo_sigma[..., None] ** 2))
    halo_y = np.exp(
        -((centres - lamps["head_y"][..., None]) ** 2) / (2 * halo_sigma[..., None] ** 2)
    )
    pool_x = np.exp(-(dx**2) / (2 * pool_sigma_x[..., None] ** 2))
    pool_y = np.exp(
        -((centres - lamps["base"][..., None] - 1.5) ** 2) / (2 * pool_sigma_y[..., None] ** 2)
    )
    lit = lamps["lit"][..., None]
    light = np.einsum("nky,nkx->nyx", lit * halo_y, halo_x) + np.einsum(
        "nky,nkx->nyx", lit * 0.8 * pool_y, pool_x
    )
    return (np.clip(light, 0.0, 1.0) * strength[:, None, None]).astype(np.float32)


def _boxes(lamp_index: np.ndarray) -> np.ndarray:
    n, height, width = lamp_index.shape
    boxes = np.full((n, MAX_LAMPS, 4), -1, dtype=np.int64)
    for k in range(MAX_LAMPS):
        mask = lamp_index == k
        cols = mask.any(axis=1)
        rows = mask.any(axis=2)
        found = cols.any(axis=1)
        boxes[found, k, 0] = np.argmax(cols[found], axis=1)
        boxes[found, k, 2] = width - np.argmax(cols[found, ::-1], axis=1)
        boxes[found, k, 1] = np.argmax(rows[found], axis=1)
        boxes[found, k, 3] = height - np.argmax(rows[found, ::-1], axis=1)
    return boxes
