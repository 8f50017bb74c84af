"""Orthomosaic GeoTIFFs: georeferencing read as GDAL reads it, pixels and data masks, views for a drone image."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from pyproj import Proj, Transformer

from vision import ortho as ortho_module
from vision.errors import OrthoError
from vision.geo import CameraIntrinsics, DroneShot, GroundProjector
from vision.ortho import read_orthomosaic, render_view, view_homography, write_geotiff

UTM51 = "EPSG:32651"
NORTH_UP = (226000.0, 0.2, 0.0, 3352600.0, 0.0, -0.2)  # Hangzhou, 20 cm pixels


def pattern(height: int = 300, width: int = 400, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (height, width, 3), np.uint8)


def geokeys(model: int, code: int, raster: int = 1) -> list[int]:
    crs_key = 3072 if model == 1 else 2048
    return [1, 1, 0, 3, 1024, 0, 1, model, 1025, 0, 1, raster, crs_key, 0, 1, code]


def raw_tiff(path: Path, data: np.ndarray, tags: list[tuple[int, str, int, object]], **options: object) -> Path:
    tifffile.imwrite(path, data, extratags=tags, **options)  # type: ignore[arg-type]
    return path


def test_a_north_up_orthomosaic_reads_back_its_grid_pixels_mask_and_date(tmp_path):
    image = pattern()
    valid = np.ones(image.shape[:2], bool)
    valid[:40, :60] = False  # not flown
    taken = datetime(2026, 4, 8, 10, 0)
    path = write_geotiff(tmp_path / "o.tif", image, crs=UTM51, transform=NORTH_UP, valid=valid, file_time=taken)
    ortho = read_orthomosaic(path)
    assert ortho.crs == UTM51 and ortho.transform == NORTH_UP
    assert ortho.levels == ((400, 300),) and ortho.bands == 4 and ortho.file_time == taken
    # a UTM metre 2.85° from the central meridian is 1/k metres on the ground, k ≈ 1.0005 there
    lon, lat = Transformer.from_crs(UTM51, "EPSG:4326", always_xy=True).transform(226040.0, 3352570.0)
    k = Proj(UTM51).get_factors(lon, lat).meridional_scale
    assert k == pytest.approx(1.0005, abs=1e-4)
    assert ortho.gsd_m == pytest.approx(0.2 / k, rel=1e-5)
    pixels, mask = ortho.read()
    assert np.array_equal(mask, valid)
    assert np.array_equal(pixels[valid], image[valid])  # BGR in, BGR out
    assert not pixels[~valid].any()


def test_pixels_and_lat_lon_convert_both_ways_as_pyproj_does(tmp_path):
    ortho = read_orthomosaic(write_geotiff(tmp_path / "o.tif", pattern(), crs=UTM51, transform=NORTH_UP))
    to_wgs = Transformer.from_crs(UTM51, "EPSG:4326", always_xy=True)
    lon, lat = to_wgs.transform(226000.0 + 10.5 * 0.2, 3352600.0 - 20.25 * 0.2)
    assert ortho.latlons_to_pixels([(lat, lon)])[0] == pytest.approx((10.5, 20.25), abs=1e-6)
    corners = ortho.footprint_latlon()
    assert ortho.latlons_to_pixels(corners) == pytest.approx(np.array([[0, 0], [400, 0], [400, 300], [0, 300]]),
                                                             abs=1e-6)  # fmt: skip
    points = np.array([[0.0, 0.0], [123.4, 56.7], [400.0, 300.0]])
    assert ortho.latlons_to_pixels(ortho.pixels_to_latlons(points)) == pytest.approx(points, abs=1e-6)


@pytest.mark.parametrize(("compression", "tolerance"), [("lzw", 0), ("jpeg", 12), ("webp", 0)])
def test_orthomosaics_compressed_as_pix4d_metashape_and_cogs_do_are_read(tmp_path, compression, tolerance):
    # LZW (Pix4D, Metashape), JPEG stored as YCbCr (COGs from gdal_translate), WebP: the georeferencing of
    # a file written as ODM does, copied onto each
    image = cv2.resize(pattern(15, 20), (400, 300), interpolation=cv2.INTER_NEAREST)  # flat 20 px squares
    with tifffile.TiffFile(write_geotiff(tmp_path / "odm.tif", image, crs=UTM51, transform=NORTH_UP)) as tif:
        tags = tif.pages[0].tags.values()
        geo = [(t.code, t.dtype, t.count, t.value) for t in tags if t.code in (33550, 33922, 34735)]
    path = raw_tiff(tmp_path / f"{compression}.tif", image[:, :, ::-1], geo, photometric="rgb", tile=(256, 256),
                    compression=compression)  # fmt: skip
    ortho = read_orthomosaic(path)
    assert (ortho.crs, ortho.transform, ortho.levels) == (UTM51, NORTH_UP, ((400, 300),))
    pixels, mask = ortho.read()
    assert mask.all() and np.abs(pixels.astype(int) - image.astype(int)).mean() <= tolerance


def test_overviews_are_levels_with_their_own_pixel_size(tmp_path):
    ortho = read_orthomosaic(
        write_geotiff(tmp_path / "o.tif", pattern(), crs=UTM51, transform=NORTH_UP, valid=None, overviews=2)
    )
    assert ortho.levels == ((400, 300), (200, 150), (100, 75))
    assert ortho.level_gsd_m(2) == pytest.approx(4 * ortho.gsd_m)
    assert ortho.level_for(0.1) == 0  # finer than any level: the finest
    assert ortho.level_for(0.45) == 1  # the coarsest level no coarser than the survey's pixels
    assert ortho.level_for(5.0) == 2
    pixels, mask = ortho.read(1)
    assert pixels.shape == (150, 200, 3) and mask.all()
    # the same place is at half the pixel coordinates one level up
    latlon = ortho.pixels_to_latlons([(100.0, 80.0)])
    assert ortho.latlons_to_pixels(latlon, level=1)[0] == pytest.approx((50.0, 40.0), abs=1e-6)
    with pytest.raises(OrthoError, match="level 3 does not exist"):
        ortho.read(3)


def test_a_rotated_grid_is_written_and_read_as_a_model_transformation(tmp_path):
    rotated = (226000.0, 0.2, 0.01, 3352600.0, 0.01, -0.2)
    path = write_geotiff(tmp_path / "o.tif", pattern(), crs=UTM51, transform=rotated)
    with tifffile.TiffFile(path) as tif:
        assert 34264 in tif.pages[0].tags and 33922 not in tif.pages[0].tags
    assert read_orthomosaic(path).transform == rotated


def test_pixel_is_point_ties_pixel_centres_as_gdal_reads_it(tmp_path):
    tags = [(33550, "d", 3, (0.5, 0.5, 0.0)), (33922, "d", 6, (0, 0, 0, 1000.0, 2000.0, 0)),
            (34735, "H", 16, geokeys(1, 32651, raster=2))]  # fmt: skip
    ortho = read_orthomosaic(raw_tiff(tmp_path / "p.tif", pattern(8, 8), tags, photometric="rgb"))
    assert ortho.transform == (999.75, 0.5, 0.0, 2000.25, 0.0, -0.5)


def test_a_geographic_orthomosaic_measures_its_pixels_in_metres(tmp_path):
    degree = 1e-5  # about 1.1 m of latitude
    tags = [(33550, "d", 3, (degree, degree, 0.0)), (33922, "d", 6, (0, 0, 0, 120.15, 30.28, 0)),
            (34735, "H", 16, geokeys(2, 4326))]  # fmt: skip
    ortho = read_orthomosaic(raw_tiff(tmp_path / "g.tif", pattern(50, 50), tags, photometric="rgb"))
    assert ortho.crs == "EPSG:4326"
    # 1e-5° is 1.109 m north-south and 0.962 m east-west at 30.28°N: their geometric mean
    assert ortho.gsd_m == pytest.approx((1.109 * 0.962) ** 0.5, rel=0.01)
    assert ortho.latlons_to_pixels([(30.28 - 10 * degree, 120.15 + 20 * degree)])[0] == pytest.approx((20, 10))


def test_gdal_nodata_marks_pixels_without_data(tmp_path):
    image = pattern(20, 30)
    image[5:10, 5:10] = 0
    tags = [(33550, "d", 3, (0.2, 0.2, 0.0)), (33922, "d", 6, (0, 0, 0, 226000.0, 3352600.0, 0)),
            (34735, "H", 16, geokeys(1, 32651)), (42113, "s", 0, "0")]  # fmt: skip
    pixels, mask = read_orthomosaic(raw_tiff(tmp_path / "n.tif", image, tags, photometric="rgb")).read()
    assert not mask[5:10, 5:10].any()
    assert mask.sum() == mask.size - 25 - int((image == 0).all(axis=2).sum() - 25)
    assert np.array_equal(pixels, image[:, :, ::-1])


def test_16_bit_and_grey_orthomosaics_become_8_bit_bgr(tmp_path):
    tags = [(33550, "d", 3, (0.2, 0.2, 0.0)), (33922, "d", 6, (0, 0, 0, 226000.0, 3352600.0, 0)),
            (34735, "H", 16, geokeys(1, 32651))]  # fmt: skip
    grey = np.arange(200, dtype=np.uint16).reshape(10, 20) * 300
    pixels, mask = read_orthomosaic(raw_tiff(tmp_path / "g16.tif", grey, tags, photometric="minisblack")).read()
    assert pixels.shape == (10, 20, 3) and mask.all()
    assert np.array_equal(pixels[:, :, 0], (grey >> 8).astype(np.uint8))
    assert np.array_equal(pixels[:, :, 0], pixels[:, :, 2])


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "is not a file"),
        ("jpeg", "is not a readable TIFF"),
        ("plain tiff", "no GeoTIFF georeferencing"),
        ("user-defined crs", "user-defined or missing"),
        ("unknown epsg", "EPSG:65000 is not a known coordinate reference system"),
        ("gcps", "tied to the map by 2 tie points"),
        ("dsm", "not 8 or 16 bit unsigned integers"),
        ("no transform", "neither ModelTransformation nor ModelTiepoint"),
    ],
)
def test_what_cannot_be_an_orthomosaic_is_refused_naming_the_file_and_why(tmp_path, case, message):
    path = tmp_path / f"{case.replace(' ', '-')}.tif"
    scale = (33550, "d", 3, (0.2, 0.2, 0.0))
    tie = (33922, "d", 6, (0, 0, 0, 226000.0, 3352600.0, 0))
    if case == "jpeg":
        path.write_bytes(cv2.imencode(".jpg", pattern(16, 16))[1].tobytes())
    elif case == "plain tiff":
        raw_tiff(path, pattern(8, 8), [], photometric="rgb")
    elif case == "user-defined crs":
        raw_tiff(path, pattern(8, 8), [scale, tie, (34735, "H", 16, geokeys(1, 32767))], photometric="rgb")
    elif case == "unknown epsg":
        raw_tiff(path, pattern(8, 8), [scale, tie, (34735, "H", 16, geokeys(1, 65000))], photometric="rgb")
    elif case == "gcps":
        gcps = (33922, "d", 12, (0, 0, 0, 226000.0, 3352600.0, 0, 8, 8, 0, 226001.6, 3352598.4, 0))
        raw_tiff(path, pattern(8, 8), [scale, gcps, (34735, "H", 16, geokeys(1, 32651))], photometric="rgb")
    elif case == "dsm":
        heights = np.full((8, 8), 12.5, np.float32)
        raw_tiff(path, heights, [scale, tie, (34735, "H", 16, geokeys(1, 32651))], photometric="minisblack")
    elif case == "no transform":
        raw_tiff(path, pattern(8, 8), [(34735, "H", 16, geokeys(1, 32651))], photometric="rgb")
    with pytest.raises(OrthoError, match=message) as caught:
        read_orthomosaic(path)
    assert str(path) in str(caught.value)


def test_a_level_too_large_to_hold_is_refused_before_decoding(tmp_path, monkeypatch):
    ortho = read_orthomosaic(write_geotiff(tmp_path / "o.tif", pattern(), crs=UTM51, transform=NORTH_UP, overviews=1))
    monkeypatch.setattr(ortho_module, "MAX_PIXELS", 100_000)
    with pytest.raises(OrthoError, match="more than 100,000 to hold in memory; add overviews"):
        ortho.read(0)
    assert ortho.read(1)[0].shape == (150, 200, 3)
    assert ortho.level_for(0.1) == 1  # the finest level is wanted, the next one fits
    monkeypatch.setattr(ortho_module, "MAX_PIXELS", 1_000)
    with pytest.raises(OrthoError, match="even its coarsest level is 200x150 pixels, more than 1,000"):
        ortho.level_for(0.1)


def _nadir_shot(lat: float, lon: float, yaw: float) -> DroneShot:
    camera = CameraIntrinsics(8.8, 13.2, 8.8, 240, 160)  # 80 m up: 0.5 m pixels
    return DroneShot(lat, lon, None, 80.0, -90.0, yaw, yaw, None, "DJI", "FC6310", camera)


@pytest.mark.parametrize("yaw", [0.0, 37.0, -120.0])
def test_a_view_puts_each_place_of_the_orthomosaic_where_the_drone_image_sees_it(tmp_path, yaw):
    # a map of distinct 2 m squares: any misplacement by a square shows
    squares = np.random.default_rng(1).integers(0, 255, (60, 80, 3), np.uint8)
    image = cv2.resize(squares, (800, 600), interpolation=cv2.INTER_NEAREST)  # 0.2 m pixels, 10 px a square
    ortho = read_orthomosaic(write_geotiff(tmp_path / "o.tif", image, crs=UTM51, transform=NORTH_UP))
    pixels, valid = ortho.read()
    centre = ortho.pixels_to_latlons([(400.0, 300.0)])[0]
    projector = GroundProjector(_nadir_shot(float(centre[0]), float(centre[1]), yaw))
    homography = view_homography(ortho, 0, (240, 160), projector.pixels_to_latlon)
    view, mask = render_view(pixels, valid, homography, (240, 160))
    assert mask.mean() > 0.9
    # sample the centres of view pixels: the ortho pixel at the same lat/lon has the same colour
    ys, xs = np.mgrid[4:156:8, 4:236:8]
    points = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64) + 0.5
    on_ortho = ortho.latlons_to_pixels(projector.pixels_to_latlon(points))
    # on the map, and away from square edges (where bilinear sampling blends two squares)
    seen = mask[ys.ravel(), xs.ravel()] & (on_ortho >= 0).all(axis=1) & (on_ortho < (800, 600)).all(axis=1)
    inner = seen & ((on_ortho % 10 > 2) & (on_ortho % 10 < 8)).all(axis=1)
    expected = pixels[on_ortho[inner, 1].astype(int), on_ortho[inner, 0].astype(int)]
    got = view[ys.ravel()[inner], xs.ravel()[inner]]
    assert inner.sum() > 100
    assert np.abs(expected.astype(int) - got.astype(int)).max() <= 2
    # and to a hundredth of a pixel: the homography maps pixel indices (centres) to pixel indices
    indices = np.array([[0.0, 0.0], [239.0, 0.0], [120.0, 80.0], [17.0, 151.0]])
    mapped = cv2.perspectiveTransform(indices.reshape(-1, 1, 2), homography).reshape(-1, 2)
    through_the_ground = ortho.latlons_to_pixels(projector.pixels_to_latlon(indices + 0.5)) - 0.5
    assert mapped == pytest.approx(through_the_ground, abs=0.01)


def test_a_view_beyond_the_orthomosaic_holds_no_data(tmp_path):
    ortho = read_orthomosaic(write_geotiff(tmp_path / "o.tif", pattern(), crs=UTM51, transform=NORTH_UP))
    pixels, valid = ortho.read()
    corner = ortho.pixels_to_latlons([(400.0, 300.0)])[0]  # the drone looks at the bottom-right corner
    projector = GroundProjector(_nadir_shot(float(corner[0]), float(corner[1]), 0.0))
    _, mask = render_view(pixels, valid, view_homography(ortho, 0, (240, 160), projector.pixels_to_latlon),
                             (240, 160))  # fmt: skip
    assert 0.2 < mask.mean() < 0.3  # a quarter of the image, less the rim
    assert mask[1:70, 1:110].all() and not mask[90:, 130:].any()  # the image's own rim is left out too
