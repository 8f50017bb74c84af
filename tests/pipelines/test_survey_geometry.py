"""Survey geometry: point-in-polygon and areas against shapely, GeoJSON polygons, clustering by distance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
import shapely.geometry
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pipelines.survey_geometry import (
    GeometryError,
    GeoPolygon,
    PlanarPolygons,
    cluster_by_distance,
    convex_overlap,
    points_in_ring,
    polygons_from_geojson,
    ring_area,
)

SQUARE = [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)]
NOTCHED = [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (5.0, 4.0), (0.0, 10.0)]  # a concave "M"


@pytest.mark.parametrize(
    ("ring", "point", "inside"),
    [
        (SQUARE, (5, 5), True),
        (SQUARE, (-1, 5), False),
        (SQUARE, (11, 5), False),
        (SQUARE, (5, 10.5), False),
        (NOTCHED, (5, 2), True),
        (NOTCHED, (5, 8), False),  # in the notch
        (NOTCHED, (1, 8), True),
        ([*SQUARE, SQUARE[0]], (5, 5), True),  # a closed ring reads the same
    ],
)
def test_points_in_ring(ring, point, inside):
    assert points_in_ring([point], ring).tolist() == [inside]


def test_a_ring_needs_three_corners():
    with pytest.raises(ValueError, match="at least 3 distinct corners"):
        points_in_ring([(0, 0)], [(0, 0), (1, 1), (0, 0)])


coordinate = st.floats(-100, 100, allow_nan=False, allow_infinity=False)


@settings(max_examples=150, deadline=None)
@given(
    corners=st.lists(st.tuples(coordinate, coordinate), min_size=3, max_size=12),
    points=st.lists(st.tuples(coordinate, coordinate), min_size=1, max_size=20),
)
def test_points_in_ring_agree_with_shapely_away_from_the_edges(corners, points):
    polygon = shapely.geometry.Polygon(corners)
    assume(polygon.is_valid and polygon.area > 1.0)
    far = [p for p in points if polygon.exterior.distance(shapely.geometry.Point(p)) > 1e-6]
    assume(far)
    expected = [polygon.contains(shapely.geometry.Point(p)) for p in far]
    assert points_in_ring(far, corners).tolist() == expected


@settings(max_examples=100, deadline=None)
@given(corners=st.lists(st.tuples(coordinate, coordinate), min_size=3, max_size=12))
def test_ring_area_is_shapelys(corners):
    polygon = shapely.geometry.Polygon(corners)
    assume(polygon.is_valid)
    assert ring_area(corners) == pytest.approx(polygon.area, rel=1e-9, abs=1e-9)


def test_convex_overlap_of_two_footprints():
    moved = [(x + 5.0, y + 2.0) for x, y in SQUARE]
    assert convex_overlap(SQUARE, moved) == pytest.approx(5.0 * 8.0)
    assert convex_overlap(SQUARE, [(x + 20.0, y) for x, y in SQUARE]) == 0.0


def _lonlat(ring_en, origin=(30.0, 120.0)):
    from vision.geo import enu_to_latlon_array

    return [[float(lon), float(lat)] for lat, lon in enu_to_latlon_array(*origin, ring_en)]


def test_polygons_with_holes_hold_no_point_in_a_hole():
    outer = _lonlat([(0, 0), (40, 0), (40, 40), (0, 40), (0, 0)])
    hole = _lonlat([(10, 10), (30, 10), (30, 30), (10, 30), (10, 10)])
    document = {"type": "Feature", "properties": {"kind": "sidewalk"}, "geometry": {"type": "Polygon",
                "coordinates": [outer, hole]}}  # fmt: skip
    planar = PlanarPolygons(polygons_from_geojson(document, source="ring.geojson"), (30.0, 120.0))
    assert planar.containing([(5, 5), (20, 20), (35, 20), (50, 50)]) == [0, None, 0, None]


def test_a_multipolygon_gives_one_polygon_per_part_with_the_features_properties():
    a = _lonlat([(0, 0), (5, 0), (5, 5), (0, 0)])
    b = _lonlat([(10, 10), (15, 10), (15, 15), (10, 10)])
    document = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"permit_no": "P-1"},
         "geometry": {"type": "MultiPolygon", "coordinates": [[a], [b]]}}]}  # fmt: skip
    polygons = polygons_from_geojson(document, source="p.geojson")
    assert [p.properties["permit_no"] for p in polygons] == ["P-1", "P-1"]
    assert GeoPolygon.from_json(polygons[1].to_json()) == polygons[1]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "not a GeoJSON object"),
        ({"type": "Point", "coordinates": [120, 30]}, "expected a FeatureCollection"),
        ({"type": "FeatureCollection"}, "needs a 'features' list"),
        ({"type": "FeatureCollection", "features": [{"type": "Feature"}]}, "feature 0: has no geometry"),
        ({"type": "Feature", "geometry": {"type": "LineString", "coordinates": []}}, "only \\(Multi\\)Polygons"),
        ({"type": "Polygon", "coordinates": [[[120, 30], [120.1, 30]]]}, "at least 3"),
        ({"type": "Polygon", "coordinates": [[[30, 120], [30.1, 120], [30.1, 120.1]]]}, "GeoJSON puts lon first"),
        ({"type": "Polygon", "coordinates": [[[120, 30], ["x", 30], [120, 31]]]}, "not numbers"),
    ],
)
def test_bad_geojson_is_refused_naming_the_feature(document, message):
    with pytest.raises(GeometryError, match=message):
        polygons_from_geojson(document, source="f.geojson")


def test_clusters_hold_at_most_one_observation_per_image():
    # two stalls 1.5 m apart seen in two images: two objects, not one
    en = [(0, 0), (1.5, 0), (0.1, 0), (1.6, 0.1)]
    groups = [0, 0, 1, 1]
    clusters = cluster_by_distance(en, groups, [0.9, 0.8, 0.7, 0.6], 2.0)
    assert sorted(sorted(c) for c in clusters) == [[0, 2], [1, 3]]


def test_clusters_join_the_nearest_observation_within_reach():
    en = [(0, 0), (0.5, 0), (1.8, 0), (9, 9)]
    groups = [0, 1, 1, 2]
    clusters = cluster_by_distance(en, groups, [1, 1, 1, 1], [1.0, 1.0, 2.0, 1.0])
    assert clusters == [[0, 1], [2], [3]]


@settings(max_examples=60, deadline=None)
@given(
    points=st.lists(st.tuples(st.floats(0, 30), st.floats(0, 30)), min_size=1, max_size=40),
    data=st.data(),
)
def test_clusters_partition_the_observations_and_stay_within_reach(points, data):
    n = len(points)
    groups = data.draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    scores = data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))
    clusters = cluster_by_distance(points, groups, scores, 3.0)
    flat = sorted(i for c in clusters for i in c)
    assert flat == list(range(n))
    for c in clusters:
        assert len({groups[i] for i in c}) == len(c)
        assert all(math.dist(points[c[0]], points[i]) <= 3.0 for i in c)


def test_cluster_arguments_must_align():
    with pytest.raises(ValueError, match="must align"):
        cluster_by_distance(np.zeros((2, 2)), [0], [1.0, 1.0], 1.0)
    with pytest.raises(ValueError, match="radius must be positive"):
        cluster_by_distance(np.zeros((1, 2)), [0], [1.0], 0.0)
