"""Parameters of the Pathfinder / Path-X contour generator (LRA recipe).

The values follow the docstrings of the builders in google-research/long-range-arena
lra_benchmarks/data/pathfinder.py and, for the rest, the defaults of drewlinsley/pathfinder
snakes2_wrapper.py. Integer divisions that the 2019 Python-2 code did with ``/`` are ``//`` here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

# Folder name of each difficulty in the LRA release, keyed by the target contour length.
DIFFICULTY_FOLDERS: dict[int, str] = {
    6: "curv_baseline",
    9: "curv_contour_length_9",
    14: "curv_contour_length_14",
}
CONTOUR_LENGTHS: dict[str, int] = {name: length for length, name in DIFFICULTY_FOLDERS.items()}
DEFAULT_DIFFICULTY = "curv_contour_length_14"


@dataclass(frozen=True)
class PathfinderConfig:
    """Everything that shapes one generated image. Lengths are in output pixels."""

    window_size: int = 32
    padding: int = 1  # frame (px) that no dash may enter
    antialias_scale: int = 2  # dashes and markers are drawn at this multiple, then averaged down
    paddle_length: int = 2  # dash length
    paddle_thickness: float = 0.5
    paddle_margin_list: tuple[int, ...] = (1,)  # gap / clearance, one value sampled per image
    marker_radius: float = 1.5
    seed_distance: int = 7  # distance between the two target snakes' start points
    continuity: float = 1.0  # turn weight cos^2(min(|dtheta| * continuity, pi/2))
    contour_length: int = 14  # dashes per target snake
    distractor_length: int = 4  # dashes per distractor snake
    num_distractor_snakes: int = 5
    snake_contrast_list: tuple[float, ...] = (2.0,)
    paddle_contrast_list: tuple[float, ...] = (0.75,)
    max_paddle_retrial: int = 2  # resamples of one dash before the snake fails
    max_distractor_contour_retrial: int = 4  # retries of one distractor before it is skipped
    stop_with_availability: float = 0.01  # no more distractors once < 1% of pixels are free
    seed_attempts: int = 64  # rejection-sampling draws for a free distractor start pixel
    # Extra clearance (px) on top of the within-snake gap. Two pixels of different snakes are
    # never closer (Chebyshev) than ``link_distance + 1``; see ``link_distance``.
    extra_clearance: int = 0
    # Distractors only need to keep this far (Chebyshev, minus one) from one another: their
    # contact cannot join the two target snakes. One dark pixel, about the original spacing.
    distractor_clearance: int = 1
    difficulty: str = field(default=DEFAULT_DIFFICULTY)

    def __post_init__(self) -> None:
        width = self.paddle_thickness * self.antialias_scale
        if abs(width - round(width)) > 1e-9:
            # Same constraint as the original draw_line_n_mask: the hi-res line width is whole.
            raise ValueError(
                f"paddle_thickness * antialias_scale must be an integer, got {width}"
            )
        if self.contour_length < 1 or self.distractor_length < 1:
            raise ValueError("contour_length and distractor_length must be >= 1")
        if not self.paddle_margin_list:
            raise ValueError("paddle_margin_list must not be empty")

    @property
    def link_distance(self) -> int:
        """Largest Chebyshev gap (px) between lit pixels of consecutive dashes of one snake.

        The generator rejects dashes that leave a larger gap, and keeps different snakes (and
        markers of other snakes) at least ``link_distance + 1`` apart, so "connected after
        bridging gaps of ``link_distance``" on the rendered image is exactly the label.
        """
        return 2 * max(self.paddle_margin_list)

    @property
    def clearance(self) -> int:
        return self.link_distance + self.extra_clearance

    def metadata_fields(self, margin: int) -> list[str]:
        """Fields 5-11 of a metadata line (after path, file, index and label)."""
        return [
            _fmt(self.continuity),
            str(self.contour_length),
            str(self.distractor_length),
            str(self.paddle_length),
            _fmt(self.paddle_thickness),
            str(margin),
            str(len(self.paddle_contrast_list)),
        ]


def _fmt(value: float) -> str:
    # "1.0" rather than "1": the release writes Python floats.
    return repr(float(value))


def _resolution_defaults(resolution: int) -> dict:
    # Per-resolution values from the LRA builders' docstrings (google-research/long-range-arena
    # lra_benchmarks/data/pathfinder.py).
    table = {
        32: dict(padding=1, paddle_length=2, paddle_thickness=0.5, paddle_margin_list=(1,),
                 marker_radius=1.5, seed_distance=7, continuity=1.0,
                 snake_contrast_list=(2.0,), paddle_contrast_list=(0.75,), distractor_budget=20),
        64: dict(padding=1, paddle_length=5, paddle_thickness=1.0, paddle_margin_list=(1,),
                 marker_radius=2.5, seed_distance=12, continuity=1.8,
                 snake_contrast_list=(0.8,), paddle_contrast_list=(1.0,), distractor_budget=22),
        128: dict(padding=1, paddle_length=5, paddle_thickness=1.5, paddle_margin_list=(2, 3),
                  marker_radius=3.0, seed_distance=20, continuity=1.8,
                  snake_contrast_list=(0.9,), paddle_contrast_list=(1.0,), distractor_budget=35),
        256: dict(padding=22, paddle_length=5, paddle_thickness=2.0, paddle_margin_list=(3,),
                  marker_radius=5.0, seed_distance=27, continuity=1.8,
                  snake_contrast_list=(1.0,), paddle_contrast_list=(1.0,), distractor_budget=30),
    }
    if resolution not in table:
        raise ValueError(f"no LRA preset for resolution {resolution}; choose one of {sorted(table)}")
    return dict(table[resolution])


def lra_config(resolution: int = 32, difficulty: str = DEFAULT_DIFFICULTY, **overrides) -> PathfinderConfig:
    """The LRA generator settings for ``pathfinder{resolution}/{difficulty}``.

    ``overrides`` replace single fields (e.g. ``num_distractor_snakes=2`` for a demo).
    """
    if difficulty not in CONTOUR_LENGTHS:
        raise ValueError(f"unknown difficulty {difficulty!r}; choose one of {sorted(CONTOUR_LENGTHS)}")
    contour_length = CONTOUR_LENGTHS[difficulty]
    params = _resolution_defaults(resolution)
    budget = params.pop("distractor_budget")
    distractor_length = contour_length // 3
    cfg = PathfinderConfig(
        window_size=resolution,
        antialias_scale=2,
        contour_length=contour_length,
        distractor_length=distractor_length,
        num_distractor_snakes=budget // distractor_length,
        difficulty=difficulty,
        **params,
    )
    return replace(cfg, **overrides) if overrides else cfg
