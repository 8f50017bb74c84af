"""`SyntheticScene`: builds a scene from a `SceneSpec` and renders any frame with its truth.

The background is drawn once per scene; each frame copies it, paints the distractors that
sit behind actors, composites the actors far to near while recording the pixels each one
paints, then applies the frame-wide distractors. Truth comes from the painted pixels, so
it is exact: rendering without an object changes only pixels inside that object's box.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator

import numpy as np

from datasets.synthetic.actors import (
    Actor,
    Chair,
    Goods,
    Machinery,
    Materials,
    Person,
    Plume,
    Scaffolding,
    SeatedPerson,
    Stall,
    Structure,
    Table,
    Umbrella,
    Vehicle,
)
from datasets.synthetic.background import Layout, build_layout, draw_background
from datasets.synthetic.distractors import Effects
from datasets.synthetic.draw import Sprite, clip_rect, composite
from datasets.synthetic.spec import (
    EVENT_KIND_OF,
    SYNTHETIC_CLASSES,
    ActorKind,
    ActorSpec,
    DistractorKind,
    EventKind,
    SceneSpec,
    StructureStyle,
)
from datasets.synthetic.truth import EventTruth, FrameTruth, ObjectTruth, SceneTruth, convex_region

logger = logging.getLogger(__name__)

NIGHT_ACTOR_GAIN = 0.45
"""Brightness of actors at night relative to day (the background has its own night image)."""

OCCLUDING_ALPHA = 0.5
"""A translucent sprite hides what is behind it where its opacity reaches this."""


_SIDEWALK_OBJECTS: dict[ActorKind, type[Stall | Umbrella | Goods | Table | Materials]] = {
    ActorKind.STALL: Stall,
    ActorKind.UMBRELLA: Umbrella,
    ActorKind.GOODS: Goods,
    ActorKind.TABLE: Table,
    ActorKind.MATERIALS: Materials,
}


class SyntheticScene:
    """A rendered-on-demand street scene; `render(t)` is a pure function of the spec and `t`."""

    def __init__(self, spec: SceneSpec) -> None:
        if not isinstance(spec, SceneSpec):
            raise TypeError(f"spec must be a SceneSpec, but got {type(spec).__name__}")
        self.spec = spec
        self.frame_count = spec.frame_count
        seeds = np.random.SeedSequence([spec.seed, 0x5CE4E]).spawn(4)
        layout_rng, bg_rng, fx_rng, actor_rng = (np.random.default_rng(s) for s in seeds)
        self.layout: Layout = build_layout(layout_rng, spec.width, spec.height)
        day, night = draw_background(bg_rng, self.layout)
        self.effects = Effects(fx_rng, spec, self.layout)
        self.background = night if self.effects.night else day
        self.background.flags.writeable = False
        self.actor_gain = NIGHT_ACTOR_GAIN if self.effects.night else 1.0
        self.structures = self._build_structures()
        self.actors = sorted([*self._build_actors(actor_rng), *self.structures], key=lambda a: a.depth)
        logger.debug("scene %s seed %d: %d actors", spec.name, spec.seed, len(self.actors))

    def _build_actors(self, rng: np.random.Generator) -> list[Actor]:
        spec, layout = self.spec, self.layout
        n, fps = spec.frame_count, spec.fps
        plan: list[tuple[ActorSpec, np.random.Generator, int, int]] = []  # spec, stream, object id, smoke index
        next_id = 1
        smoke_count = 0
        for actor_spec in spec.actors:
            group_rng = np.random.default_rng(rng.integers(1 << 62))
            for _ in range(actor_spec.count):
                plan.append((actor_spec, np.random.default_rng(group_rng.integers(1 << 62)), next_id, smoke_count))
                if actor_spec.kind is ActorKind.SMOKE:
                    smoke_count += 1
                next_id += 1
        # chairs go round the tables, so the tables are built first; every actor keeps its own stream
        built = {
            object_id: self._make_actor(actor_spec, a_rng, object_id, smoke_index)
            for actor_spec, a_rng, object_id, smoke_index in plan
            if actor_spec.kind is not ActorKind.CHAIR
        }
        tables = [a for a in built.values() if isinstance(a, Table)]
        chair_plan = [(s, r, i) for s, r, i, _ in plan if s.kind is ActorKind.CHAIR]
        for k, (actor_spec, a_rng, object_id) in enumerate(chair_plan):
            appear = self._appear_frame(actor_spec, a_rng)
            table = tables[k % len(tables)] if tables else None
            built[object_id] = Chair(a_rng, layout, appear, object_id, table=table, slot=k // max(len(tables), 1))
        actors: list[Actor] = [built[object_id] for _, _, object_id, _ in plan]
        # people sitting on chairs take the ids after the structures'
        sitter_id = next_id + len(spec.structures)
        for chair in [a for a in actors if isinstance(a, Chair) and a.seated]:
            actors.append(SeatedPerson(chair, n, sitter_id))
            sitter_id += 1
        if DistractorKind.STEAM in spec.distractors:
            steam_rng = np.random.default_rng(rng.integers(1 << 62))
            vent = layout.vents[1] if smoke_count else layout.vents[int(steam_rng.integers(0, 2))]
            actors.append(Plume(steam_rng, layout, fps, n, vent=vent, start=0, steam=True, kind=None, object_id=0))
        actors.sort(key=lambda a: a.depth)  # stable: equal depths keep their build order
        return actors

    def _build_structures(self) -> list[Structure]:
        """Unlabelled structures, from a random stream of their own: scenes without any render as before."""
        spec = self.spec
        if not spec.structures:
            return []
        n, fps = spec.frame_count, spec.fps
        rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 0x5CE4E, 0x57C]))
        first_id = 1 + sum(a.count for a in spec.actors)
        structures = []
        styles = list(StructureStyle)
        for i, s in enumerate(spec.structures):
            s_rng = np.random.default_rng(rng.integers(1 << 62))
            style = s.style if s.style is not None else styles[int(s_rng.integers(0, len(styles)))]
            appear = round(s.appear_s * fps) if s.appear_s is not None else int(s_rng.integers(0, max(n // 2, 1)))
            remove = None if s.remove_s is None else round(s.remove_s * fps)
            structures.append(
                Structure(s_rng, self.layout, fps, style=style, appear=min(appear, n - 1),
                          build_frames=round(s.build_s * fps), remove=remove, object_id=first_id + i)
            )  # fmt: skip
        return structures

    def _appear_frame(self, actor_spec: ActorSpec, rng: np.random.Generator) -> int:
        n = self.spec.frame_count
        if actor_spec.appear_s is not None:
            return min(round(actor_spec.appear_s * self.spec.fps), n - 1)
        return int(rng.integers(0, max(n // 2, 1)))

    def _make_actor(self, actor_spec: ActorSpec, rng: np.random.Generator, object_id: int, smoke_index: int) -> Actor:
        spec, layout = self.spec, self.layout
        n, fps = spec.frame_count, spec.fps
        appear = self._appear_frame(actor_spec, rng)
        kind = actor_spec.kind
        if kind is ActorKind.SMOKE:
            vent = layout.vents[smoke_index % len(layout.vents)]
            return Plume(rng, layout, fps, n, vent=vent, start=appear, steam=False, kind=kind, object_id=object_id)
        if kind in _SIDEWALK_OBJECTS:
            return _SIDEWALK_OBJECTS[kind](rng, layout, appear, object_id)
        if kind is ActorKind.PERSON:
            return Person(rng, layout, fps, n, object_id)
        if kind is ActorKind.VEHICLE:
            parks = actor_spec.parks and object_id == self._first_id_of(actor_spec)
            return Vehicle(rng, layout, fps, n, object_id, parks=parks)
        if kind is ActorKind.SCAFFOLDING:
            return Scaffolding(rng, layout, n, appear=appear, object_id=object_id)
        if kind is ActorKind.MACHINERY:
            return Machinery(rng, layout, fps, appear=appear, object_id=object_id)
        raise ValueError(f"{kind.value} is built by _build_actors (chairs go beside tables), not by _make_actor")

    def _first_id_of(self, actor_spec: ActorSpec) -> int:
        first = 1
        for a in self.spec.actors:
            if a is actor_spec:
                return first
            first += a.count
        return first

    @property
    def object_classes(self) -> dict[int, str]:
        """Object id -> class name for every actor that gets truth."""
        return {a.object_id: a.kind.value for a in self.actors if a.kind is not None}

    def _check_index(self, t: int) -> None:
        if not 0 <= t < self.frame_count:
            raise ValueError(f"frame index must lie in [0, {self.frame_count}), but got {t}")

    def render(self, t: int, *, hidden: Collection[int] = ()) -> tuple[np.ndarray, FrameTruth]:
        """Frame `t` as H×W×3 uint8 BGR and its truth; objects whose ids are in `hidden` are left out."""
        self._check_index(t)
        frame = self.background.copy()
        self.effects.before_actors(frame, t)
        truth = self._actors_pass(t, frame, hidden)
        frame = self.effects.after_actors(frame, t)
        return frame, truth

    def frame_truth(self, t: int) -> FrameTruth:
        """The truth of frame `t` without rendering the image (same numbers as `render`)."""
        self._check_index(t)
        return self._actors_pass(t, None, ())

    def _actors_pass(self, t: int, frame: np.ndarray | None, hidden: Collection[int]) -> FrameTruth:
        h, w = self.spec.height, self.spec.width
        cover = np.zeros((h, w), np.int32)  # draw order (1-based) of the nearest occluder so far
        painted: list[tuple[Actor, Sprite, int, tuple[int, int, int, int]]] = []
        order = 0
        for actor in self.actors:
            if actor.kind is not None and actor.object_id in hidden:
                continue
            sprite = actor.sprite(t)
            if sprite is None:
                continue
            order += 1
            rect = clip_rect(sprite.x0, sprite.y0, sprite.alpha.shape[1], sprite.alpha.shape[0], width=w, height=h)
            if rect is None:
                continue
            if frame is not None:
                composite(frame, sprite, self.actor_gain)
            fx0, fy0, fx1, fy1 = rect
            local = sprite.alpha[fy0 - sprite.y0 : fy1 - sprite.y0, fx0 - sprite.x0 : fx1 - sprite.x0]
            cover[fy0:fy1, fx0:fx1][local >= OCCLUDING_ALPHA] = order
            if actor.kind is not None:
                painted.append((actor, sprite, order, rect))
        objects = [self._object_truth(actor, sprite, k, rect, cover) for actor, sprite, k, rect in painted]
        kept = sorted((o for o in objects if o is not None), key=lambda o: o.object_id)
        return FrameTruth(index=t, objects=tuple(kept))

    @staticmethod
    def _object_truth(
        actor: Actor, sprite: Sprite, order: int, rect: tuple[int, int, int, int], cover: np.ndarray
    ) -> ObjectTruth | None:
        fx0, fy0, fx1, fy1 = rect
        own = sprite.alpha[fy0 - sprite.y0 : fy1 - sprite.y0, fx0 - sprite.x0 : fx1 - sprite.x0] > 0
        n_in = int(np.count_nonzero(own))
        if n_in == 0:
            return None
        rows, cols = np.flatnonzero(own.any(axis=1)), np.flatnonzero(own.any(axis=0))
        n_all = int(np.count_nonzero(sprite.alpha > 0))
        visible = int(np.count_nonzero(own & (cover[fy0:fy1, fx0:fx1] <= order)))
        assert actor.kind is not None  # painted holds labelled actors only
        return ObjectTruth(
            object_id=actor.object_id,
            class_name=actor.kind.value,
            class_id=actor.kind.class_id,
            xyxy=(float(fx0 + cols[0]), float(fy0 + rows[0]), float(fx0 + cols[-1] + 1), float(fy0 + rows[-1] + 1)),
            visible_fraction=visible / n_in,
            in_frame_fraction=n_in / max(n_all, 1),
        )

    def frames(self) -> Iterator[tuple[int, np.ndarray, FrameTruth]]:
        """Every frame in order as (index, BGR image, truth)."""
        for t in range(self.frame_count):
            image, truth = self.render(t)
            yield t, image, truth

    def events(self, frames: Collection[FrameTruth]) -> tuple[EventTruth, ...]:
        """Violation events from per-frame truth: one per smoke, staying or construction object."""
        spans: dict[int, list[FrameTruth]] = {}
        for ft in frames:
            for o in ft.objects:
                spans.setdefault(o.object_id, []).append(ft)
        events: list[EventTruth] = []
        for actor in sorted((a for a in self.actors if a.kind in EVENT_KIND_OF), key=lambda a: a.object_id):
            assert actor.kind is not None
            seen = spans.get(actor.object_id)
            if not seen:
                continue
            boxes = [b.xyxy for ft in seen if (b := ft.by_id(actor.object_id)) is not None]
            attributes: dict[str, object] = {}
            if isinstance(actor, Plume):
                attributes = {"ringelmann": actor.ringelmann, "vent": [float(actor.vent[0]), float(actor.vent[1])]}
                zone = self.layout.zone_of(actor.vent[0], actor.vent[1])
            elif isinstance(actor, Scaffolding):
                x0, y0, x1, y1 = boxes[-1]
                zone = self.layout.zone_of((x0 + x1) / 2, (y0 + y1) / 2)
            else:
                x0, _, x1, y1 = boxes[0]
                zone = self.layout.zone_of((x0 + x1) / 2, y1 - 1)
            events.append(
                EventTruth(
                    event_id=len(events) + 1,
                    kind=EVENT_KIND_OF[actor.kind].value,
                    object_ids=(actor.object_id,),
                    start_frame=min(ft.index for ft in seen),
                    end_frame=max(ft.index for ft in seen),
                    region=convex_region(boxes),
                    zone=zone,
                    attributes=attributes,
                )
            )
        for structure in self.structures:
            shown = [ft.index for ft in frames if structure.parts_at(ft.index) > 0]
            if not shown:
                continue
            x0, y0, x1, y1 = structure.box()
            box = (max(x0, 0.0), max(y0, 0.0), min(x1, float(self.spec.width)), min(y1, float(self.spec.height)))
            events.append(
                EventTruth(
                    event_id=len(events) + 1,
                    kind=EventKind.CONSTRUCTION.value,
                    object_ids=(structure.object_id,),
                    start_frame=min(shown),
                    end_frame=max(shown),
                    region=convex_region([box]),
                    zone=self.layout.zone_of((box[0] + box[2]) / 2, box[3] - 1),
                    attributes={"structure": structure.style.value, "labelled": False},
                )
            )
        return tuple(events)

    def scene_truth(self, frames: Collection[FrameTruth] | None = None) -> SceneTruth:
        """The whole truth; computes per-frame truth (without images) when `frames` is not given."""
        if frames is None:
            frames = [self.frame_truth(t) for t in range(self.frame_count)]
        ordered = tuple(sorted(frames, key=lambda f: f.index))
        return SceneTruth(
            spec_json=self.spec.model_dump(mode="json"),
            width=self.spec.width,
            height=self.spec.height,
            fps=self.spec.fps,
            classes=SYNTHETIC_CLASSES,
            objects=self.object_classes,
            zones=self.layout.zones(),
            frames=ordered,
            events=self.events(ordered),
        )


def iter_scene(spec: SceneSpec) -> Iterator[tuple[int, np.ndarray, FrameTruth]]:
    """Render `spec` frame by frame as (index, BGR uint8 image, truth), writing nothing."""
    yield from SyntheticScene(spec).frames()


def scene_truth(spec: SceneSpec) -> SceneTruth:
    """The truth of `spec` (per-frame objects and events) without rendering images."""
    return SyntheticScene(spec).scene_truth()
