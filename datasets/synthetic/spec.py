"""What a synthetic scene holds: `SceneSpec`, its actors and distractors, presets, sampler.

A spec is a frozen pydantic model (extra keys are errors), so it serializes into the
truth file beside a video and a scene can be rebuilt from it exactly: the same spec
always renders the same frames.
"""

from __future__ import annotations

import logging
import math
import zlib
from enum import StrEnum
from typing import Any, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

logger = logging.getLogger(__name__)

SYNTHETIC_CLASSES: tuple[str, ...] = (
    "smoke",
    "stall",
    "umbrella",
    "goods",
    "person",
    "vehicle",
    "scaffolding",
    "machinery",
    "table",
    "chair",
    "materials",
)
"""Detection classes of synthetic truth, in YOLO class-id order.

New classes are only ever appended: a shipped model depends on the ids of the old ones
(smoke=0 ... machinery=7).
"""


class ActorKind(StrEnum):
    """Things that get ground truth; the value is the class name in `SYNTHETIC_CLASSES`."""

    SMOKE = "smoke"
    STALL = "stall"
    UMBRELLA = "umbrella"
    GOODS = "goods"
    PERSON = "person"
    VEHICLE = "vehicle"
    SCAFFOLDING = "scaffolding"
    MACHINERY = "machinery"
    TABLE = "table"  # an outdoor restaurant or food-stall table set out on the sidewalk
    CHAIR = "chair"  # a chair or stool set out on the sidewalk (maybe with someone sitting on it)
    MATERIALS = "materials"  # construction materials: bricks, sand or gravel, rebar, timber, bagged cement

    @property
    def class_id(self) -> int:
        return SYNTHETIC_CLASSES.index(self.value)


class EventKind(StrEnum):
    """What a violation event is about (matches the engine's rule families)."""

    FUME = "fume"
    OCCUPATION = "occupation"
    CONSTRUCTION = "construction"


EVENT_KIND_OF: dict[ActorKind, EventKind] = {
    ActorKind.SMOKE: EventKind.FUME,
    ActorKind.STALL: EventKind.OCCUPATION,
    ActorKind.UMBRELLA: EventKind.OCCUPATION,
    ActorKind.GOODS: EventKind.OCCUPATION,
    ActorKind.SCAFFOLDING: EventKind.CONSTRUCTION,
    ActorKind.MACHINERY: EventKind.CONSTRUCTION,
    ActorKind.TABLE: EventKind.OCCUPATION,
    ActorKind.CHAIR: EventKind.OCCUPATION,
    ActorKind.MATERIALS: EventKind.CONSTRUCTION,
}
"""Actors that make an event (one each); persons and vehicles pass by and make none.

Tables and chairs that a restaurant or a food stall sets out on the sidewalk are
occupation (占道经营 covers 店外摆放桌椅), like the stall itself. Construction materials
are construction, as `vision.rules`' `construction_watch` says ("equipment, materials or
scaffolding"), wherever they lie. A person sitting on a chair is a person: no event.
"""

STAYING_KINDS: frozenset[ActorKind] = frozenset(EVENT_KIND_OF) - {ActorKind.SMOKE}


class DistractorKind(StrEnum):
    """Things that change pixels but must never be labelled."""

    STEAM = "steam"  # white, fast-dissipating puffs near a vent
    FOG = "fog"  # global haze
    CLOUDS = "clouds"  # clouds drifting across the sky
    RAIN = "rain"  # rain streaks
    LIGHTING_DRIFT = "lighting_drift"  # gradual brightness change
    LIGHTING_SWITCH = "lighting_switch"  # sudden brightness step
    NIGHT = "night"  # dark scene, lit windows and street lamps
    NOISE = "noise"  # sensor noise
    JPEG = "jpeg"  # compression artefacts
    FLAG = "flag"  # a waving flag on a building


class StructureStyle(StrEnum):
    """Structures that go up without a detector class: only a structural-change rule sees them."""

    HOARDING = "hoarding"  # a fence of site hoarding panels put up along the sidewalk
    WALL = "wall"  # a brick wall rising course by course on the sidewalk
    SHED = "shed"  # a shed built on a roof (an illegal rooftop addition)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ActorSpec(_Model):
    """One kind of actor in a scene and how many of it."""

    kind: ActorKind = Field(description="What the actor is; also its class name")
    count: int = Field(default=1, ge=1, le=30, description="How many independent actors of this kind")
    appear_s: float | None = Field(
        default=None,
        ge=0.0,
        le=3600.0,
        description=(
            "Seconds from the start when a staying object (stall, umbrella, goods, scaffolding, "
            "machinery, table, chair, materials) appears or a plume starts; None draws it from the seed in "
            "the scene's first half. Must be None for person and vehicle"
        ),
    )
    parks: bool = Field(default=False, description="Vehicle only: one of the cars drives in and parks at the kerb")

    @model_validator(mode="after")
    def _check_kind_options(self) -> Self:
        if self.appear_s is not None and self.kind in (ActorKind.PERSON, ActorKind.VEHICLE):
            raise ValueError(f"appear_s applies to staying objects and smoke, but got appear_s for {self.kind.value}")
        if self.parks and self.kind is not ActorKind.VEHICLE:
            raise ValueError(f"parks applies to vehicle only, but got parks=True for {self.kind.value}")
        return self


class StructureSpec(_Model):
    """A structure built up over a few seconds that then stays: a construction event, no class."""

    style: StructureStyle | None = Field(default=None, description="What goes up; None draws it from the seed")
    appear_s: float | None = Field(
        default=None, ge=0.0, le=3600.0, description="When building starts; None draws it from the seed (first half)"
    )
    build_s: float = Field(
        default=3.0, gt=0.0, le=600.0, description="Seconds from the first part to the finished structure"
    )
    remove_s: float | None = Field(
        default=None, gt=0.0, le=3600.0, description="When it is taken down again; None keeps it to the end"
    )

    @model_validator(mode="after")
    def _check_order(self) -> Self:
        if self.remove_s is not None and self.appear_s is not None and self.remove_s <= self.appear_s:
            raise ValueError(f"remove_s must be > appear_s={self.appear_s}, but got {self.remove_s}")
        return self


class SceneSpec(_Model):
    """A fixed-camera street scene: size, timing, seed, actors and distractors."""

    name: str = Field(default="custom", min_length=1, max_length=64, description="Preset name or a label for the scene")
    width: int = Field(default=640, ge=160, le=3840, description="Frame width in pixels")
    height: int = Field(default=360, ge=90, le=2160, description="Frame height in pixels")
    fps: float = Field(default=15.0, gt=0.0, le=60.0, description="Frames per second")
    duration_s: float = Field(default=8.0, gt=0.0, le=600.0, description="Length of the scene in seconds")
    seed: int = Field(default=0, ge=0, le=2**63 - 1, description="Seed of every random choice; same spec, same frames")
    actors: tuple[ActorSpec, ...] = Field(default=(), max_length=16, description="Actors that get ground truth")
    distractors: tuple[DistractorKind, ...] = Field(
        default=(), max_length=len(DistractorKind), description="Effects that change pixels but are never labelled"
    )
    structures: tuple[StructureSpec, ...] = Field(
        default=(),
        max_length=4,
        description="Structures going up that no detector class covers (construction events without labels)",
    )
    noise_sigma: float = Field(
        default=4.0, ge=0.0, le=40.0, description="Std of sensor noise in grey levels (with NOISE)"
    )
    jpeg_quality: int = Field(default=30, ge=5, le=95, description="JPEG quality of compression artefacts (with JPEG)")

    @field_validator("distractors")
    @classmethod
    def _no_duplicate_distractors(cls, value: tuple[DistractorKind, ...]) -> tuple[DistractorKind, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"distractors must not repeat, but got {[d.value for d in value]}")
        return value

    @model_validator(mode="after")
    def _check_timing(self) -> Self:
        if self.frame_count < 1:
            raise ValueError(f"fps * duration_s must give at least one frame, but got {self.fps} * {self.duration_s}")
        for actor in self.actors:
            if actor.appear_s is not None and actor.appear_s >= self.duration_s:
                raise ValueError(
                    f"{actor.kind.value}.appear_s must be < duration_s={self.duration_s}, but got {actor.appear_s}"
                )
        for structure in self.structures:
            if structure.appear_s is not None and structure.appear_s >= self.duration_s:
                raise ValueError(
                    f"structure appear_s must be < duration_s={self.duration_s}, but got {structure.appear_s}"
                )
        return self

    @property
    def frame_count(self) -> int:
        return round(self.fps * self.duration_s)

    @property
    def has_events(self) -> bool:
        return any(a.kind in EVENT_KIND_OF for a in self.actors) or bool(self.structures)

    # Presets: each takes the seed and any other SceneSpec field as a keyword override.

    @classmethod
    def restaurant_street(cls, seed: int = 0, *, extras: bool = False, **overrides: Any) -> SceneSpec:
        """A plume rises from a restaurant's exhaust vent while people and cars pass.

        With `extras`, about half the seeds also have the restaurant's tables and chairs out on
        the sidewalk from the start, some with people sitting at them.
        """
        base: dict[str, Any] = {
            "name": "restaurant_street",
            "seed": seed,
            "actors": (
                ActorSpec(kind=ActorKind.SMOKE, appear_s=0.0),
                ActorSpec(kind=ActorKind.PERSON, count=3),
                ActorSpec(kind=ActorKind.VEHICLE, count=1),
                *(
                    _seating(_preset_rng(seed, "restaurant_street"), share=0.5, tables=(1, 3), appear_s=0.0)
                    if extras
                    else ()
                ),
            ),
            "distractors": (DistractorKind.CLOUDS, DistractorKind.NOISE),
        }
        return cls(**(base | overrides))

    @classmethod
    def sidewalk_stall(cls, seed: int = 0, *, extras: bool = False, **overrides: Any) -> SceneSpec:
        """A vendor stall appears on the sidewalk and stays while people pass.

        With `extras`, some seeds (about two in five) give a food stall that sets out tables
        and stools with it.
        """
        base: dict[str, Any] = {
            "name": "sidewalk_stall",
            "seed": seed,
            "actors": (
                ActorSpec(kind=ActorKind.STALL, appear_s=1.0),
                ActorSpec(kind=ActorKind.PERSON, count=4),
                ActorSpec(kind=ActorKind.VEHICLE, count=1),
                *(
                    _seating(_preset_rng(seed, "sidewalk_stall"), share=0.4, tables=(1, 2), appear_s=1.0)
                    if extras
                    else ()
                ),
            ),
            "distractors": (DistractorKind.NOISE,),
        }
        return cls(**(base | overrides))

    @classmethod
    def construction_site(cls, seed: int = 0, *, extras: bool = False, **overrides: Any) -> SceneSpec:
        """Scaffolding goes up on a building front, with an excavator beside it (with `extras`,
        piles of materials too)."""
        materials = int(_preset_rng(seed, "construction_site").integers(1, 4)) if extras else 0
        base: dict[str, Any] = {
            "name": "construction_site",
            "seed": seed,
            "actors": (
                ActorSpec(kind=ActorKind.SCAFFOLDING, appear_s=0.5),
                ActorSpec(kind=ActorKind.MACHINERY, appear_s=0.0),
                ActorSpec(kind=ActorKind.PERSON, count=2),
                *((ActorSpec(kind=ActorKind.MATERIALS, count=materials, appear_s=0.0),) if materials else ()),
            ),
            "distractors": (DistractorKind.CLOUDS, DistractorKind.NOISE),
        }
        return cls(**(base | overrides))

    @classmethod
    def structure_going_up(cls, seed: int = 0, **overrides: Any) -> SceneSpec:
        """A hoarding, a wall or a rooftop shed goes up and stays; no detector class covers it."""
        base: dict[str, Any] = {
            "name": "structure_going_up",
            "seed": seed,
            "duration_s": 12.0,
            "actors": (ActorSpec(kind=ActorKind.PERSON, count=3), ActorSpec(kind=ActorKind.VEHICLE, count=1)),
            "structures": (StructureSpec(),),
            "distractors": (DistractorKind.CLOUDS, DistractorKind.NOISE),
        }
        return cls(**(base | overrides))

    @classmethod
    def distractor_only(cls, seed: int = 0, **overrides: Any) -> SceneSpec:
        """Steam, fog, clouds, rain, lighting changes and a flag: nothing to label, no events."""
        base: dict[str, Any] = {
            "name": "distractor_only",
            "seed": seed,
            "actors": (),
            "distractors": (
                DistractorKind.STEAM,
                DistractorKind.FOG,
                DistractorKind.CLOUDS,
                DistractorKind.RAIN,
                DistractorKind.LIGHTING_DRIFT,
                DistractorKind.LIGHTING_SWITCH,
                DistractorKind.FLAG,
                DistractorKind.NOISE,
                DistractorKind.JPEG,
            ),
        }
        return cls(**(base | overrides))


def _preset_rng(seed: int, preset: str) -> np.random.Generator:
    """A random stream of a preset's optional actors, apart from the scene's own.

    The preset's other actors are listed first and keep their draws, so a seed that gets
    no optional actors renders exactly as it did before they existed.
    """
    return np.random.default_rng([seed, 0x0B7, zlib.crc32(preset.encode())])


def _seating(
    rng: np.random.Generator, *, share: float, tables: tuple[int, int], appear_s: float | None
) -> tuple[ActorSpec, ...]:
    """Tables with chairs around them, in `share` of the draws (none otherwise)."""
    if rng.random() >= share:
        return ()
    n_tables = int(rng.integers(tables[0], tables[1] + 1))
    n_chairs = int(rng.integers(n_tables + 1, 3 * n_tables + 2))
    return (
        ActorSpec(kind=ActorKind.TABLE, count=n_tables, appear_s=appear_s),
        ActorSpec(kind=ActorKind.CHAIR, count=n_chairs, appear_s=appear_s),
    )


PRESETS: dict[str, Any] = {
    "restaurant_street": SceneSpec.restaurant_street,
    "sidewalk_stall": SceneSpec.sidewalk_stall,
    "construction_site": SceneSpec.construction_site,
    "distractor_only": SceneSpec.distractor_only,
    "structure_going_up": SceneSpec.structure_going_up,
}
"""Preset constructors by name; each is called as `PRESETS[name](seed, **overrides)`."""

FURNISHED_PRESETS = frozenset({"restaurant_street", "sidewalk_stall", "construction_site"})
"""Presets that take `extras=True` (tables, chairs, materials)."""


def sample_scene_spec(
    seed: int,
    *,
    width: int = 640,
    height: int = 360,
    fps: float = 15.0,
    duration_s: float = 8.0,
    extras: bool = False,
) -> SceneSpec:
    """A random scene for `seed`: a random mix of actors and distractors (for datasets).

    About one scene in ten is distractor-only, so a detector sees hard negatives. With
    `extras`, tables, chairs and materials come too, from a random stream of their own after
    the other actors, so every other draw of a seed is the same with or without them (scenes
    without extras are the ones the published evaluation figures were measured on).
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, but got {seed}")
    rng = np.random.default_rng([seed, 0x5CE7E])
    actors: list[ActorSpec] = []
    if rng.random() >= 0.1:
        staying = [ActorKind.SMOKE, ActorKind.STALL, ActorKind.UMBRELLA, ActorKind.GOODS]
        staying += [ActorKind.SCAFFOLDING, ActorKind.MACHINERY]
        n_staying = int(rng.integers(1, 4))
        for kind in rng.choice(np.array(staying, dtype=object), size=n_staying, replace=False):
            count = 1 if kind in (ActorKind.SMOKE, ActorKind.SCAFFOLDING) else int(rng.integers(1, 3))
            appear = float(rng.uniform(0.0, 0.4 * duration_s)) if rng.random() < 0.7 else 0.0
            actors.append(ActorSpec(kind=ActorKind(kind), count=count, appear_s=math.floor(appear * 100) / 100))
        if rng.random() < 0.9:
            actors.append(ActorSpec(kind=ActorKind.PERSON, count=int(rng.integers(1, 7))))
        if rng.random() < 0.75:
            actors.append(
                ActorSpec(kind=ActorKind.VEHICLE, count=int(rng.integers(1, 4)), parks=bool(rng.random() < 0.3))
            )
    if actors and extras:
        actors.extend(_sampled_street_furniture(seed, duration_s))
    optional = [d for d in DistractorKind if d not in (DistractorKind.NOISE, DistractorKind.NIGHT)]
    chosen = [DistractorKind(d) for d in optional if rng.random() < 0.25]
    if rng.random() < 0.15:
        chosen.append(DistractorKind.NIGHT)
    if rng.random() < 0.7:
        chosen.append(DistractorKind.NOISE)
    if not actors and not chosen:
        chosen.append(DistractorKind.STEAM)
    return SceneSpec(
        name="sampled",
        width=width,
        height=height,
        fps=fps,
        duration_s=duration_s,
        seed=seed,
        actors=tuple(actors),
        distractors=tuple(chosen),
        noise_sigma=float(np.round(rng.uniform(1.5, 7.0), 2)),
        jpeg_quality=int(rng.integers(15, 60)),
    )


def _sampled_street_furniture(seed: int, duration_s: float) -> list[ActorSpec]:
    """Tables and chairs (or stools alone) and construction materials for a sampled scene."""
    rng = np.random.default_rng([seed, 0x5CE7E, 0xF0])

    def appear() -> float:
        at = float(rng.uniform(0.0, 0.4 * duration_s)) if rng.random() < 0.7 else 0.0
        return math.floor(at * 100) / 100

    out: list[ActorSpec] = []
    draw = rng.random()
    if draw < 0.3:
        out.extend(_seating(rng, share=1.0, tables=(1, 2), appear_s=appear()))
    elif draw < 0.4:  # stools set out on their own
        out.append(ActorSpec(kind=ActorKind.CHAIR, count=int(rng.integers(1, 5)), appear_s=appear()))
    if rng.random() < 0.25:
        out.append(ActorSpec(kind=ActorKind.MATERIALS, count=int(rng.integers(1, 4)), appear_s=appear()))
    return out
