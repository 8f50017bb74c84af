from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from vision.types import ClockSource, Detections, Frame, GeoTag

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def make_detections(n: int, tracks: bool = False) -> Detections:
    rng = np.random.default_rng(n)
    xy = rng.uniform(0, 100, (n, 2))
    wh = rng.uniform(1, 50, (n, 2))
    return Detections(
        xyxy=np.hstack([xy, xy + wh]),
        score=rng.uniform(0, 1, n),
        class_id=rng.integers(0, 5, n),
        track_id=np.arange(n) if tracks else None,
    )


class TestFrame:
    def test_keeps_image_and_metadata(self):
        image = np.zeros((4, 6, 3), np.uint8)
        frame = Frame(image, "cam-1", 3, NOW, ClockSource.NTP)
        assert (frame.height, frame.width, frame.index, frame.clock_source) == (4, 6, 3, ClockSource.NTP)

    def test_image_is_read_only_but_callers_array_is_not(self):
        image = np.zeros((4, 6, 3), np.uint8)
        frame = Frame(image, "cam-1", 0, NOW)
        with pytest.raises(ValueError, match="read-only"):
            frame.image[0, 0, 0] = 1
        image[0, 0, 0] = 1  # the caller's own array stays writeable
        assert image.flags.writeable

    @pytest.mark.parametrize(
        ("image", "message"),
        [
            (np.zeros((4, 6), np.uint8), r"shape \(H, W, 3\), but got shape \(4, 6\)"),
            (np.zeros((4, 6, 4), np.uint8), r"but got shape \(4, 6, 4\)"),
            (np.zeros((4, 6, 3), np.float32), "uint8 BGR, but got dtype float32"),
            (np.zeros((0, 6, 3), np.uint8), "must not be empty"),
        ],
    )
    def test_rejects_bad_images_saying_what_came(self, image, message):
        with pytest.raises(ValueError, match=message):
            Frame(image, "cam-1", 0, NOW)

    def test_rejects_naive_and_non_utc_times(self):
        image = np.zeros((4, 6, 3), np.uint8)
        with pytest.raises(ValueError, match="timezone-aware"):
            Frame(image, "cam-1", 0, datetime(2026, 1, 1))
        with pytest.raises(ValueError, match="UTC"):
            Frame(image, "cam-1", 0, datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=8))))

    def test_rejects_negative_index_and_empty_source(self):
        image = np.zeros((4, 6, 3), np.uint8)
        with pytest.raises(ValueError, match="index"):
            Frame(image, "cam-1", -1, NOW)
        with pytest.raises(ValueError, match="source_id"):
            Frame(image, "", 0, NOW)

    def test_geotag_bounds(self):
        assert GeoTag(30.5, 114.3, 120.0).altitude_m == 120.0
        with pytest.raises(ValueError, match="lat"):
            GeoTag(91.0, 0.0)
        with pytest.raises(ValueError, match="lon"):
            GeoTag(0.0, 181.0)


class TestDetections:
    def test_converts_dtypes(self):
        d = Detections(xyxy=[[0, 0, 1, 1]], score=[0.5], class_id=[2])
        assert (d.xyxy.dtype, d.score.dtype, d.class_id.dtype) == (np.float32, np.float32, np.int32)
        assert d.track_id is None

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"xyxy": np.zeros(3)}, r"shape \(_, 4\), but got shape \(3,\)"),
            ({"score": np.zeros(3)}, r"score must be a 1D array with shape \(2,\).*got shape \(3,\)"),
            ({"class_id": np.zeros((2, 1))}, r"class_id must be a 1D array with shape \(2,\)"),
            ({"track_id": np.zeros(1)}, r"track_id must be a 1D array with shape \(2,\)"),
            ({"xyxy": np.array([[0, 0, np.nan, 1], [0, 0, 1, 1]])}, "finite"),
            ({"score": np.array([0.5, np.inf])}, "finite"),
        ],
    )
    def test_rejects_misaligned_or_bad_arrays(self, kwargs, message):
        base = {"xyxy": np.zeros((2, 4)), "score": np.zeros(2), "class_id": np.zeros(2)}
        with pytest.raises(ValueError, match=message):
            Detections(**{**base, **kwargs})

    def test_is_immutable(self):
        d = make_detections(3)
        with pytest.raises(ValueError, match="read-only"):
            d.xyxy[0, 0] = 5
        with pytest.raises(AttributeError):
            d.score = np.zeros(3)  # type: ignore[misc]

    @pytest.mark.parametrize("index", [1, slice(1, 3), [0, 2], np.array([True, False, True, False])])
    def test_indexing_returns_aligned_detections(self, index):
        d = make_detections(4, tracks=True)
        part = d[index]
        expected = np.arange(4)[index]
        assert np.array_equal(part.track_id, np.atleast_1d(expected))
        assert np.array_equal(part.xyxy, d.xyxy[np.atleast_1d(expected)])

    def test_merge_concatenates_and_keeps_tracks_only_when_all_have_them(self):
        a, b = make_detections(2, tracks=True), make_detections(3, tracks=True)
        merged = Detections.merge([a, Detections.empty(), b])
        assert len(merged) == 5
        assert merged.track_id is not None
        assert Detections.merge([a, make_detections(1)]).track_id is None
        assert len(Detections.merge([])) == 0

    def test_with_track_ids_leaves_the_receiver_alone(self):
        d = make_detections(2)
        tracked = d.with_track_ids([7, 8])
        assert d.track_id is None
        assert tracked.track_id.tolist() == [7, 8]

    def test_area_and_records(self):
        d = Detections(xyxy=[[0, 0, 2, 3]], score=[0.91234], class_id=[1], track_id=[4])
        assert d.area.tolist() == [6.0]
        assert d.to_records(["a", "b"]) == [
            {"xyxy": [0.0, 0.0, 2.0, 3.0], "score": 0.9123, "class_id": 1, "class_name": "b", "track_id": 4}
        ]

    def test_equality_compares_values(self):
        assert make_detections(3) == make_detections(3)
        assert make_detections(3) != make_detections(2)


def make_violation(**overrides):
    from vision.types import BoxSample, Violation

    base = {
        "kind": "occupation",
        "source_id": "cam-1",
        "zone": "sidewalk",
        "started_at": NOW,
        "ended_at": NOW + timedelta(seconds=30),
        "start_frame": 10,
        "end_frame": 310,
        "confirmed_frame": 160,
        "track_ids": (4,),
        "boxes": (BoxSample(10, NOW, (0, 0, 10, 10), 0.9, 4), BoxSample(300, NOW, (5, 5, 20, 30), 0.8, 4)),
        "score": 0.85,
        "keyframes": (160,),
        "clip_span": (0, 360),
        "model_id": "abc",
        "rule": {"min_dwell_s": 15},
    }
    return Violation(**{**base, **overrides})


class TestViolation:
    def test_record_carries_span_box_and_rule(self):
        v = make_violation()
        record = v.to_record()
        assert record["kind"] == "occupation"
        assert record["bbox"] == [0.0, 0.0, 20.0, 30.0]
        assert (record["start_frame"], record["confirmed_frame"], record["end_frame"]) == (10, 160, 310)
        assert v.duration_s == 30.0

    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"kind": "parking"}, "parking"),
            ({"end_frame": 5}, "end_frame must be >= start_frame"),
            ({"confirmed_frame": 5}, "confirmed_frame must be >= start_frame"),
            ({"ended_at": NOW - timedelta(seconds=1)}, "ended_at must not precede"),
            ({"clip_span": (20, 360)}, "clip_span must cover"),
            ({"keyframes": (400,)}, "keyframes must lie in clip_span"),
            ({"score": 1.5}, "score must lie in"),
        ],
    )
    def test_rejects_inconsistent_fields(self, overrides, message):
        with pytest.raises(ValueError, match=message):
            make_violation(**overrides)
