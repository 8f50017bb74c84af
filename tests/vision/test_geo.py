import math
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image

from vision.errors import DroneMetadataError, VisionError
from vision.geo import (
    DRONE_CAMERAS,
    WGS84_A,
    CameraIntrinsics,
    DroneShot,
    GroundProjector,
    SrtRecord,
    camera_for_model,
    camera_rotation,
    encode_drone_jpeg,
    enu_to_latlon,
    enu_to_latlon_array,
    latlon_to_enu,
    latlon_to_enu_array,
    parse_srt,
    read_drone_shot,
    shot_at,
    write_drone_metadata,
)

P4P = DRONE_CAMERAS["FC6310"]
ORIGIN = (30.2741, 120.1551)


def make_shot(**changes) -> DroneShot:
    base = DroneShot(
        lat=ORIGIN[0],
        lon=ORIGIN[1],
        abs_alt_m=112.5,
        rel_alt_m=100.0,
        gimbal_pitch_deg=-90.0,
        gimbal_yaw_deg=0.0,
        flight_yaw_deg=0.0,
        taken_at=datetime(2026, 5, 1, 9, 30, 15, 250000, tzinfo=timezone(timedelta(hours=8))),
        make="DJI",
        model="FC6310",
        intrinsics=P4P,
    )
    return replace(base, **changes)


def small_shot(**changes) -> DroneShot:
    return make_shot(intrinsics=P4P.for_image_size(120, 80), **changes)


def write_jpeg(path: Path, shot: DroneShot) -> Path:
    k = shot.intrinsics
    path.write_bytes(encode_drone_jpeg(np.full((k.height_px, k.width_px, 3), 90, np.uint8), shot))
    return path


def jpeg_with(path: Path, *, exif: Image.Exif | None, xmp: str | None, size=(120, 80)) -> Path:
    """A JPEG whose EXIF and XMP are exactly what a test says, nothing from the module's writer."""
    ok, buf = cv2.imencode(".jpg", np.full((size[1], size[0], 3), 90, np.uint8))
    assert ok
    data = buf.tobytes()
    segments = b""
    if exif is not None:
        payload = exif.tobytes()
        segments += b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    if xmp is not None:
        payload = b"http://ns.adobe.com/xap/1.0/\x00" + xmp.encode()
        segments += b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    path.write_bytes(data[:2] + segments + data[2:])
    return path


def gps_exif(lat=(30, 16, 26.76), lon=(120, 9, 18.36), model="FC6310", **exif_ifd) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "DJI"
    exif[0x0110] = model
    if lat is not None or lon is not None:
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        if lat is not None:
            gps[ExifTags.GPS.GPSLatitudeRef] = "N"
            gps[ExifTags.GPS.GPSLatitude] = lat
        if lon is not None:
            gps[ExifTags.GPS.GPSLongitudeRef] = "E"
            gps[ExifTags.GPS.GPSLongitude] = lon
    if exif_ifd:
        ifd = exif.get_ifd(ExifTags.IFD.Exif)
        for tag, value in exif_ifd.items():
            ifd[getattr(ExifTags.Base, tag)] = value
    return exif


# A packet as DJI writes it: many namespaces, values with explicit signs
DJI_XMP = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="DJI Meta Data"
    xmlns:tiff="http://ns.adobe.com/tiff/1.0/"
    xmlns:exif="http://ns.adobe.com/exif/1.0/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/"
   xmp:ModifyDate="2019-03-20"
   tiff:Make="DJI"
   drone-dji:AbsoluteAltitude="+125.96"
   drone-dji:RelativeAltitude="+50.10"
   drone-dji:GimbalRollDegree="+0.00"
   drone-dji:GimbalYawDegree="-37.30"
   drone-dji:GimbalPitchDegree="-89.90"
   drone-dji:FlightRollDegree="+1.80"
   drone-dji:FlightYawDegree="-34.70"
   drone-dji:FlightPitchDegree="+4.00"
   drone-dji:CamReverse="0"/>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""

# The same properties written as elements, as some DJI firmware and tools do
ELEMENT_XMP = """<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/">
   <drone-dji:AbsoluteAltitude>+125.96</drone-dji:AbsoluteAltitude>
   <drone-dji:RelativeAltitude>+50.10</drone-dji:RelativeAltitude>
   <drone-dji:GimbalYawDegree>-37.30</drone-dji:GimbalYawDegree>
   <drone-dji:GimbalPitchDegree>-89.90</drone-dji:GimbalPitchDegree>
   <drone-dji:FlightYawDegree>-34.70</drone-dji:FlightYawDegree>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>"""


# --- cameras ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model", ["FC6310", "FC6310S", "FC220", "FC3170", "L1D-20c", "FC7303", "M3E", "FC6510", "FC6520", "ZH20T", "M3T"]
)
def test_the_table_knows_the_common_drone_cameras(model):
    camera = DRONE_CAMERAS[model]
    assert 0 < camera.focal_mm < 20 and camera.sensor_w_mm > camera.sensor_h_mm > 0
    assert DRONE_CAMERAS["FC3582"].width_px == 8064  # Mini 3 Pro


def test_fx_is_the_focal_length_in_pixels():
    assert P4P.fx == pytest.approx(8.8 * 5472 / 13.2)
    assert P4P.fy == pytest.approx(8.8 * 3648 / 8.8)
    assert (P4P.cx, P4P.cy) == (2736.0, 1824.0)


def test_a_resized_image_keeps_the_field_of_view():
    small = P4P.for_image_size(1200, 800)
    assert small.fx / 1200 == pytest.approx(P4P.fx / 5472)
    assert (small.sensor_w_mm, small.sensor_h_mm) == (13.2, 8.8)


def test_a_16_by_9_photo_crops_the_sensor_and_keeps_the_pixel_pitch():
    wide = P4P.for_image_size(5472, 3078)
    assert wide.sensor_w_mm == pytest.approx(13.2)
    assert wide.sensor_h_mm == pytest.approx(13.2 * 3078 / 5472)
    assert wide.fx == pytest.approx(P4P.fx) and wide.fy == pytest.approx(P4P.fx)


@pytest.mark.parametrize(("size", "focal"), [((640, 512), 13.5), ((5184, 3888), 6.83), ((4056, 3040), 4.5)])
def test_a_multi_camera_payload_picks_the_lens_by_image_size(size, focal):
    assert camera_for_model("ZH20T", *size).focal_mm == focal


def test_the_photos_own_focal_length_wins_over_the_table():
    assert camera_for_model("FC6520", 5280, 3956, focal_mm=45.0).focal_mm == 45.0
    assert camera_for_model("no such drone", 100, 100) is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("focal_mm", 0.0, "focal_mm"), ("sensor_w_mm", math.nan, "sensor_w_mm"), ("width_px", 0, "width_px")],
)
def test_intrinsics_reject_nonsense(field, value, message):
    with pytest.raises(ValueError, match=message):
        replace(P4P, **{field: value})


# --- EXIF / XMP round trip ---------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"lat": -33.8568, "lon": -151.2153, "gimbal_yaw_deg": -123.4, "gimbal_pitch_deg": -45.5},
        {"abs_alt_m": None, "flight_yaw_deg": None, "taken_at": None},
        {"taken_at": datetime(2026, 1, 2, 3, 4, 5)},  # naive: the drone's local clock
        {"abs_alt_m": -12.25, "gimbal_roll_deg": 1.5, "rel_alt_m": 37.125},
    ],
    ids=["nadir", "south-west-oblique", "sparse", "naive-time", "below-sea-level"],
)
def test_what_is_written_is_read_back(tmp_path, changes):
    shot = small_shot(**changes)
    got = read_drone_shot(write_jpeg(tmp_path / "DJI_0001.JPG", shot))
    assert got.lat == pytest.approx(shot.lat, abs=1e-9)
    assert got.lon == pytest.approx(shot.lon, abs=1e-9)
    for field in ("abs_alt_m", "rel_alt_m", "gimbal_pitch_deg", "gimbal_yaw_deg", "gimbal_roll_deg", "flight_yaw_deg"):
        expected = getattr(shot, field)
        assert getattr(got, field) == (None if expected is None else pytest.approx(expected, abs=1e-6)), field
    assert got.taken_at == shot.taken_at
    assert (got.make, got.model) == ("DJI", "FC6310")
    assert got.intrinsics.fx == pytest.approx(shot.intrinsics.fx)
    assert (got.intrinsics.width_px, got.intrinsics.height_px) == (120, 80)


def test_a_camera_missing_from_the_table_is_read_from_its_focal_plane_resolution(tmp_path):
    custom = CameraIntrinsics(focal_mm=7.0, sensor_w_mm=10.0, sensor_h_mm=7.5, width_px=160, height_px=120)
    shot = make_shot(model="XYZ-1", intrinsics=custom)
    got = read_drone_shot(write_jpeg(tmp_path / "a.jpg", shot))
    assert got.intrinsics.fx == pytest.approx(custom.fx, rel=1e-4)
    assert got.intrinsics.fy == pytest.approx(custom.fy, rel=1e-4)


def test_a_35mm_equivalent_focal_length_alone_gives_the_field_of_view(tmp_path):
    path = jpeg_with(tmp_path / "a.jpg", exif=gps_exif(model="Unknown", FocalLengthIn35mmFilm=24), xmp=DJI_XMP)
    got = read_drone_shot(path)
    diagonal_fov = 2 * math.atan(math.hypot(120, 80) / 2 / got.intrinsics.fx)
    assert math.degrees(diagonal_fov) == pytest.approx(math.degrees(2 * math.atan(43.2666 / 2 / 24)), abs=0.01)


def test_intrinsics_given_by_the_caller_replace_the_table_but_must_fit_the_image(tmp_path):
    path = write_jpeg(tmp_path / "a.jpg", small_shot())
    custom = CameraIntrinsics(focal_mm=5.0, sensor_w_mm=6.0, sensor_h_mm=4.0, width_px=120, height_px=80)
    assert read_drone_shot(path, intrinsics=custom).intrinsics == custom
    with pytest.raises(ValueError, match=r"120x80"):
        read_drone_shot(path, intrinsics=P4P)


def test_write_drone_metadata_rewrites_a_file_and_keeps_its_pixels(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (80, 120, 3), np.uint8)
    path = tmp_path / "plain.jpg"
    assert cv2.imwrite(str(path), image)
    before = cv2.imread(str(path))
    out = write_drone_metadata(path, small_shot())
    assert path.read_bytes() == out
    assert np.array_equal(cv2.imread(str(path)), before)
    assert read_drone_shot(path).rel_alt_m == 100.0
    # writing twice replaces, never stacks, the segments
    assert write_drone_metadata(out, small_shot()).count(b"<x:xmpmeta") == 1


def test_write_drone_metadata_refuses_what_is_not_a_jpeg():
    with pytest.raises(ValueError, match="not a JPEG"):
        write_drone_metadata(b"\x89PNG\r\n\x1a\n", small_shot())


@pytest.mark.parametrize("xmp", [DJI_XMP, ELEMENT_XMP], ids=["attributes", "elements"])
def test_dji_xmp_is_read_as_attributes_or_elements(tmp_path, xmp):
    got = read_drone_shot(jpeg_with(tmp_path / "a.jpg", exif=gps_exif(), xmp=xmp))
    assert got.rel_alt_m == 50.10
    assert got.abs_alt_m == 125.96
    assert got.gimbal_pitch_deg == -89.90
    assert got.gimbal_yaw_deg == -37.30
    assert got.flight_yaw_deg == -34.70
    assert got.lat == pytest.approx(30 + 16 / 60 + 26.76 / 3600)
    assert got.lon == pytest.approx(120 + 9 / 60 + 18.36 / 3600)


def test_southern_and_western_refs_make_negative_coordinates(tmp_path):
    exif = gps_exif()
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "S"
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    got = read_drone_shot(jpeg_with(tmp_path / "a.jpg", exif=exif, xmp=DJI_XMP))
    assert got.lat < 0 and got.lon < 0


@pytest.mark.parametrize(
    ("exif_kwargs", "xmp", "field"),
    [
        ({"lat": None}, DJI_XMP, "GPSLatitude"),
        ({"lon": None}, DJI_XMP, "GPSLongitude"),
        ({"lat": (0, 0, 0), "lon": (0, 0, 0)}, DJI_XMP, "no GPS fix"),
        ({}, DJI_XMP.replace('drone-dji:RelativeAltitude="+50.10"', ""), "drone-dji:RelativeAltitude"),
        ({}, DJI_XMP.replace('drone-dji:GimbalPitchDegree="-89.90"', ""), "drone-dji:GimbalPitchDegree"),
        ({}, DJI_XMP.replace('drone-dji:GimbalYawDegree="-37.30"', ""), "drone-dji:GimbalYawDegree"),
        ({}, DJI_XMP.replace("+50.10", "high"), "RelativeAltitude is 'high'"),
        ({}, None, "RelativeAltitude.*no XMP packet"),
        ({}, DJI_XMP.replace("</rdf:RDF>", ""), "XMP packet is not well-formed"),
        ({"model": "Mystery"}, DJI_XMP, "FocalLength"),
    ],
)
def test_missing_or_bad_fields_name_the_file_and_the_field(tmp_path, exif_kwargs, xmp, field):
    path = jpeg_with(tmp_path / "DJI_0042.JPG", exif=gps_exif(**exif_kwargs), xmp=xmp)
    with pytest.raises(DroneMetadataError, match=field) as caught:
        read_drone_shot(path)
    assert "DJI_0042.JPG" in str(caught.value)
    assert isinstance(caught.value, VisionError)


@pytest.mark.parametrize(
    "content",
    [b"", b"not an image at all", b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00MM\x00*", bytes(range(256)) * 8],
    ids=["empty", "text", "truncated-exif", "noise"],
)
def test_a_corrupt_file_raises_drone_metadata_error(tmp_path, content):
    path = tmp_path / "broken.JPG"
    path.write_bytes(content)
    with pytest.raises(DroneMetadataError, match=r"broken\.JPG"):
        read_drone_shot(path)


@pytest.mark.train
def test_a_corrupt_file_is_named_where_ultralytics_has_patched_pillow(tmp_path, monkeypatch):
    """ultralytics replaces PIL.Image.open with one that imports a HEIF plugin (not installed) for
    files Pillow cannot identify: in a process that trains, that must still be a clear error."""
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    from ultralytics.utils import patches

    monkeypatch.setattr("PIL.Image.open", patches.image_open)
    monkeypatch.setattr(patches, "_pil_plugins_registered", False, raising=False)
    path = tmp_path / "broken.JPG"
    path.write_bytes(b"not an image at all")
    with pytest.raises(DroneMetadataError, match=r"broken\.JPG"):
        read_drone_shot(path)


@pytest.mark.parametrize(
    "packet",
    [
        '<!DOCTYPE x [<!ENTITY a "+50.10">]>' + DJI_XMP.replace('"+50.10"', '"&a;"'),
        DJI_XMP.replace("<rdf:RDF", '<!DOCTYPE x [<!ENTITY a "+50.10">]><rdf:RDF'),
    ],
    ids=["declared-before-the-packet", "declared-inside"],
)
def test_the_xmp_parser_expands_no_entities(tmp_path, packet):
    with pytest.raises(DroneMetadataError, match="XMP packet"):
        read_drone_shot(jpeg_with(tmp_path / "a.jpg", exif=gps_exif(), xmp=packet))


def test_a_shot_rejects_coordinates_out_of_range():
    with pytest.raises(ValueError, match="lat must lie"):
        make_shot(lat=91.0)


def test_a_shot_becomes_the_geotag_a_frame_carries():
    tag = make_shot(gimbal_yaw_deg=12.0).to_geotag()
    assert (tag.lat, tag.lon, tag.altitude_m, tag.yaw_deg, tag.pitch_deg) == (*ORIGIN, 100.0, 12.0, -90.0)


# --- projection ------------------------------------------------------------------------------


def test_phantom_4_pro_at_100_m_sees_2_74_cm_per_pixel():
    assert GroundProjector(make_shot()).gsd_m == pytest.approx(0.0274, abs=0.00005)


def test_a_nadir_footprint_is_height_times_sensor_over_focal():
    corners = GroundProjector(make_shot()).footprint_enu()
    # top-left, top-right, bottom-right, bottom-left; top is north at yaw 0
    assert corners == pytest.approx(np.array([[-75, 50], [75, 50], [75, -50], [-75, -50]]), abs=1e-9)


def test_the_footprint_in_latlon_is_the_same_rectangle():
    projector = GroundProjector(make_shot())
    latlon = projector.footprint_latlon()
    en = latlon_to_enu_array(*ORIGIN, latlon)
    assert en == pytest.approx(projector.footprint_enu(), abs=1e-6)
    assert latlon[0, 0] > ORIGIN[0] > latlon[2, 0]  # top edge north of the drone, bottom south
    assert latlon[0, 1] < ORIGIN[1] < latlon[1, 1]  # left edge west, right edge east


@pytest.mark.parametrize("yaw", [0.0, 30.0, 90.0, 180.0, -135.0, 271.0])
def test_image_up_points_along_the_gimbal_yaw(yaw):
    projector = GroundProjector(make_shot(gimbal_yaw_deg=yaw))
    east, north = projector.pixel_to_enu(P4P.cx, 0.0)
    assert math.degrees(math.atan2(east, north)) % 360 == pytest.approx(yaw % 360)
    assert math.hypot(east, north) == pytest.approx(50.0)
    right = projector.pixel_to_enu(P4P.width_px, P4P.cy)
    assert math.degrees(math.atan2(*right)) % 360 == pytest.approx((yaw + 90) % 360)


@pytest.mark.parametrize("pitch", [-60.0, -45.0, -30.0, -10.0])
def test_an_oblique_centre_ray_meets_the_ground_at_height_over_tan_pitch(pitch):
    projector = GroundProjector(make_shot(gimbal_pitch_deg=pitch, gimbal_yaw_deg=90.0))
    east, north = projector.pixel_to_enu(P4P.cx, P4P.cy)
    assert east == pytest.approx(100.0 / math.tan(math.radians(-pitch)))
    assert north == pytest.approx(0.0, abs=1e-9)
    # the bottom of the image is nearer the drone than its top
    assert projector.pixel_to_enu(P4P.cx, P4P.height_px)[0] < east


def test_an_oblique_gsd_is_coarser_than_a_nadir_one():
    nadir = GroundProjector(make_shot()).gsd_m
    oblique = GroundProjector(make_shot(gimbal_pitch_deg=-45.0)).gsd_m
    assert nadir is not None and oblique is not None
    # range sqrt(2)·h across, and sqrt(2)·range along the ground: 2^0.75 coarser
    assert oblique / nadir == pytest.approx(2**0.75, rel=1e-3)


def test_rays_at_or_above_the_horizon_reach_no_ground():
    projector = GroundProjector(make_shot(gimbal_pitch_deg=0.0))
    assert projector.pixel_to_enu(P4P.cx, P4P.cy) is None
    assert projector.pixel_to_latlon(P4P.cx, 0.0) is None
    assert projector.gsd_m is None
    assert projector.box_size_m(0, 0, 10, 10) is None
    assert projector.box_latlon(0, 0, 10, 10) is None
    assert np.isnan(projector.pixels_to_latlon([[P4P.cx, 10.0]])).all()
    assert projector.pixel_to_enu(P4P.cx, P4P.height_px) is not None  # below the horizon: ground


def test_an_oblique_footprint_that_sees_the_sky_is_clipped_to_the_range():
    projector = GroundProjector(make_shot(gimbal_pitch_deg=-15.0))
    corners = projector.footprint_enu(max_range_m=400.0)
    top = np.hypot(corners[:2, 0], corners[:2, 1])
    assert top == pytest.approx([400.0, 400.0])
    assert np.hypot(*corners[2]) < 400.0  # bottom corners see ground nearby
    assert (corners[:, 1] > 0).all()  # all of it ahead (north)


def test_a_ground_point_behind_the_camera_has_no_pixel():
    projector = GroundProjector(make_shot(gimbal_pitch_deg=-20.0))
    assert projector.enu_to_pixel(0.0, -50.0) is None
    assert projector.enu_to_pixel(0.0, 300.0) is not None


def test_box_size_and_centre_on_a_nadir_shot():
    projector = GroundProjector(make_shot(gimbal_yaw_deg=90.0))
    gsd = 100.0 / P4P.fx
    width, height = projector.box_size_m(1000, 1000, 1200, 1050)
    assert (width, height) == (pytest.approx(200 * gsd), pytest.approx(50 * gsd))
    lat, lon = projector.box_latlon(1000, 1000, 1200, 1050)
    assert projector.latlon_to_pixel(lat, lon) == pytest.approx((1100.0, 1025.0), abs=1e-6)


def test_the_homographies_agree_with_the_ray_casting():
    projector = GroundProjector(make_shot(gimbal_pitch_deg=-50.0, gimbal_yaw_deg=33.0, gimbal_roll_deg=2.0))
    pixels = np.array([[0.0, 3000.0], [2736.0, 1824.0], [5000.0, 3600.0]])
    h = projector.ground_homography() @ np.c_[pixels, np.ones(3)].T
    np.testing.assert_allclose((h[:2] / h[2]).T, projector.pixels_to_enu(pixels), rtol=1e-9)
    back = projector.enu_homography() @ np.c_[projector.pixels_to_enu(pixels), np.ones(3)].T
    np.testing.assert_allclose((back[:2] / back[2]).T, pixels, atol=1e-6)


def test_a_projector_needs_the_drone_above_the_ground():
    with pytest.raises(ValueError, match="rel_alt_m"):
        GroundProjector(make_shot(rel_alt_m=0.0))


def test_camera_rotation_is_a_rotation():
    r = camera_rotation(37.0, -62.0, 4.0)
    assert r @ r.T == pytest.approx(np.eye(3))
    assert np.linalg.det(r) == pytest.approx(1.0)
    # nadir, yaw 0: the optical axis points down and the image's right to the east
    nadir = camera_rotation(0.0, -90.0)
    assert nadir @ [0, 0, 1] == pytest.approx([0, 0, -1])
    assert nadir @ [1, 0, 0] == pytest.approx([1, 0, 0])


@settings(max_examples=300, deadline=None)
@given(
    yaw=st.floats(-180, 180),
    pitch=st.floats(-90, -25),
    roll=st.floats(-5, 5),
    height=st.floats(5, 500),
    u=st.floats(0, 1),
    v=st.floats(0, 1),
    lat=st.floats(-70, 70),
    lon=st.floats(-179, 179),
)
def test_pixel_to_latlon_to_pixel_is_the_identity(yaw, pitch, roll, height, u, v, lat, lon):
    shot = make_shot(
        lat=lat, lon=lon, rel_alt_m=height, gimbal_yaw_deg=yaw, gimbal_pitch_deg=pitch, gimbal_roll_deg=roll
    )
    projector = GroundProjector(shot)
    x, y = u * P4P.width_px, v * P4P.height_px
    ground = projector.pixel_to_latlon(x, y)
    assume(ground is not None)
    assume(math.hypot(*projector.pixel_to_enu(x, y)) < 3000)  # rays grazing the horizon lose precision
    assert projector.latlon_to_pixel(*ground) == pytest.approx((x, y), abs=1e-3)


def test_vectorised_and_scalar_projections_agree():
    projector = GroundProjector(make_shot(gimbal_pitch_deg=-70.0, gimbal_yaw_deg=-20.0))
    pixels = np.random.default_rng(1).uniform([0, 0], [5472, 3648], (50, 2))
    latlon = projector.pixels_to_latlon(pixels)
    for (x, y), row in zip(pixels, latlon, strict=True):
        assert projector.pixel_to_latlon(x, y) == pytest.approx(tuple(row), abs=1e-12)
    assert projector.latlons_to_pixels(latlon) == pytest.approx(pixels, abs=1e-6)


# --- lat/lon and ENU --------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    lat0=st.floats(-80, 80),
    lon0=st.floats(-180, 180),
    east=st.floats(-5000, 5000),
    north=st.floats(-5000, 5000),
)
def test_enu_and_latlon_are_inverses(lat0, lon0, east, north):
    lat, lon = enu_to_latlon(lat0, lon0, east, north)
    assert -180 <= lon <= 180
    assert latlon_to_enu(lat0, lon0, lat, lon) == pytest.approx((east, north), abs=1e-6)


def test_a_metre_north_is_a_metre_on_the_meridian():
    lat, lon = enu_to_latlon(*ORIGIN, 0.0, 1000.0)
    assert lon == ORIGIN[1]
    assert (lat - ORIGIN[0]) * 111_000 == pytest.approx(1000.0, rel=0.005)  # ~111 km per degree


def test_longitude_wraps_at_the_antimeridian():
    east, north = latlon_to_enu(0.0, 179.9995, 0.0, -179.9995)
    assert east == pytest.approx(111.32, abs=0.01) and north == 0.0


def _exact_enu(lat0: float, lon0: float, latlon: np.ndarray) -> np.ndarray:
    """ENU on the tangent plane through WGS84 ECEF coordinates: the textbook transform."""
    e2 = 1 / 298.257223563 * (2 - 1 / 298.257223563)

    def ecef(lat, lon):
        lat, lon = np.radians(lat), np.radians(lon)
        n = WGS84_A / np.sqrt(1 - e2 * np.sin(lat) ** 2)
        return np.stack([n * np.cos(lat) * np.cos(lon), n * np.cos(lat) * np.sin(lon), n * (1 - e2) * np.sin(lat)], -1)

    d = ecef(latlon[:, 0], latlon[:, 1]) - ecef(np.array(lat0), np.array(lon0))
    la, lo = math.radians(lat0), math.radians(lon0)
    east = np.array([-math.sin(lo), math.cos(lo), 0.0])
    north = np.array([-math.sin(la) * math.cos(lo), -math.sin(la) * math.sin(lo), math.cos(la)])
    return np.stack([d @ east, d @ north], -1)


@pytest.mark.parametrize(
    ("lat0", "distance", "bound"),
    [(30.27, 300, 0.005), (30.27, 1000, 0.05), (30.27, 5000, 1.2), (60.0, 1000, 0.14), (60.0, 5000, 3.4)],
)
def test_the_local_mapping_is_as_accurate_as_documented(lat0, distance, bound):
    angles = np.linspace(0, 2 * np.pi, 73)
    en = distance * np.stack([np.cos(angles), np.sin(angles)], -1)
    latlon = enu_to_latlon_array(lat0, 120.0, en)
    error = np.hypot(*(_exact_enu(lat0, 120.0, latlon) - en).T)
    assert error.max() < bound


# --- SRT ----------------------------------------------------------------------------------------

NEW_SRT = """1
00:00:00,000 --> 00:00:00,033
<font size="28">FrameCnt: 1, DiffTime: 33ms
2023-05-01 10:20:30.123
[iso: 100] [shutter: 1/1000.0] [fnum: 2.8] [ev: 0] [ct: 5500] [color_md: default] [focal_len: 24.00] \
[latitude: 22.543210] [longitude: 113.912345] [rel_alt: 50.100 abs_alt: 120.300] \
[gb_yaw: -12.3 gb_pitch: -89.9 gb_roll: 0.0] </font>

2
00:00:00,033 --> 00:00:00,066
<font size="28">FrameCnt: 2, DiffTime: 33ms
2023-05-01 10:20:30.156
[iso: 100] [shutter: 1/1000.0] [fnum: 2.8] [ev: 0] [latitude : 22.543220] [longtitude : 113.912355] \
[rel_alt: 50.200 abs_alt: 120.400] </font>
"""

OLD_SRT = """1
00:00:00,000 --> 00:00:01,000
HOME(113.9123,22.5432) 2017.08.05 14:11:51
GPS(113.9130,22.5440,16) BAROMETER:50.3
ISO:100 Shutter:60 EV:0 Fnum:2.2

2
00:00:01,000 --> 00:00:02,000
HOME(113.9123,22.5432) 2017.08.05 14:11:52
GPS(113.9131,22.5441,17) BAROMETER:50.8
ISO:100 Shutter:60 EV:0 Fnum:2.2
"""

MAVIC_PRO_SRT = """1
00:00:01,000 --> 00:00:02,000
F/2.2, SS 320, ISO 100, EV 0, GPS (113.9123, 22.5432, 19), D 24.5m, H 50.0m, HS 0.00m/s, VS 0.00m/s
"""


def test_the_newer_dji_srt_format_is_read():
    first, second = parse_srt(NEW_SRT)
    assert first == SrtRecord(
        index=1,
        start_s=0.0,
        end_s=0.033,
        lat=22.543210,
        lon=113.912345,
        rel_alt_m=50.1,
        abs_alt_m=120.3,
        frame=1,
        taken_at=datetime(2023, 5, 1, 10, 20, 30, 123000),
        gimbal_yaw_deg=-12.3,
        gimbal_pitch_deg=-89.9,
        gimbal_roll_deg=0.0,
    )
    assert (second.frame, second.lon, second.rel_alt_m, second.gimbal_pitch_deg) == (2, 113.912355, 50.2, None)


def test_the_older_dji_srt_format_is_read():
    first, second = parse_srt(OLD_SRT)
    assert (first.lon, first.lat, first.abs_alt_m, first.rel_alt_m) == (113.9130, 22.5440, 16.0, 50.3)
    assert (second.start_s, second.end_s, second.frame) == (1.0, 2.0, None)
    assert second.taken_at == datetime(2017, 8, 5, 14, 11, 52)
    (mavic,) = parse_srt(MAVIC_PRO_SRT)
    assert (mavic.lon, mavic.lat, mavic.rel_alt_m) == (113.9123, 22.5432, 50.0)


def test_windows_line_ends_and_a_byte_order_mark_are_fine():
    assert parse_srt("\ufeff" + NEW_SRT.replace("\n", "\r\n")) == parse_srt(NEW_SRT)


def test_subtitles_without_a_gps_fix_are_left_out():
    no_fix = NEW_SRT.replace("22.543210", "0.000000").replace("113.912345", "0.000000")
    assert [r.frame for r in parse_srt(no_fix)] == [2]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("one\n00:00:00,000 --> 00:00:01,000\n[latitude: 1] [longitude: 2]\n", "line 1: expected a subtitle number"),
        ("1\n00:00:00 -> 00:00:01\n[latitude: 1] [longitude: 2]\n", "line 2: expected a time range"),
        ("1\n00:00:01,000 --> 00:00:00,000\n[latitude: 1] [longitude: 2]\n", "line 2: .*ends before it starts"),
        (
            "1\n00:00:01,000 --> 00:00:02,000\n[latitude: 1] [longitude: 2]\n\n2\n00:00:00,000 --> 00:00:00,500\n"
            "[latitude: 1] [longitude: 2]\n",
            "line 6: subtitle 2 starts before",
        ),
        (
            "1\n00:00:00,000 --> 00:00:01,000\nISO:100\n[latitude: north] [longitude: 2]\n",
            "line 4: latitude is 'north'",
        ),
        (
            "1\n00:00:00,000 --> 00:00:01,000\n[latitude: 95.0] [longitude: 2]\n",
            "line 3: latitude 95.0 is out of range",
        ),
        ("1\n00:00:00,000 --> 00:00:01,000\nGPS(113.9, 22.5, 1, 2)\n", "line 3: expected GPS\\(lon, lat, alt\\)"),
        ("1\n00:00:00,000 --> 00:00:01,000\nISO:100 Shutter:60\n", "line 3: subtitle 1 has no position"),
        ("1\n00:00:00,000 --> 00:00:01,000\n2023-02-30 10:00:00\n[latitude: 1] [longitude: 2]\n", "line 3: .*date"),
    ],
)
def test_a_bad_srt_line_is_named_by_its_number(text, message):
    with pytest.raises(DroneMetadataError, match=rf"DJI_0007\.SRT {message}"):
        parse_srt(text, source="DJI_0007.SRT")


def test_shot_at_finds_the_subtitle_of_a_frame_time():
    records = parse_srt(OLD_SRT)
    assert shot_at(records, 0.0) is records[0]
    assert shot_at(records, 0.999) is records[0]
    assert shot_at(records, 1.0) is records[1]
    assert shot_at(records, 2.04) is records[1]  # just past the end, within the tolerance
    assert shot_at(records, 2.5) is None
    assert shot_at(records, -1.0) is None
    assert shot_at([], 0.0) is None


def test_shot_at_bridges_a_small_gap_to_the_nearest_subtitle():
    gap = parse_srt(OLD_SRT.replace("00:00:01,000 --> 00:00:02,000", "00:00:01,100 --> 00:00:02,000"))
    assert shot_at(gap, 1.02) is gap[0]
    assert shot_at(gap, 1.07) is gap[1]
    assert shot_at(gap, 1.05, tolerance_s=0.01) is None


def test_a_record_becomes_a_shot_when_the_gimbal_angles_are_known():
    first, second = parse_srt(NEW_SRT)
    camera = DRONE_CAMERAS["FC7303"]
    shot = first.to_shot(camera, model="FC7303")
    assert (shot.rel_alt_m, shot.gimbal_pitch_deg, shot.gimbal_yaw_deg) == (50.1, -89.9, -12.3)
    with pytest.raises(DroneMetadataError, match="gb_pitch"):
        second.to_shot(camera)
    assert second.to_shot(camera, gimbal_pitch_deg=-90.0, gimbal_yaw_deg=0.0).gimbal_pitch_deg == -90.0
    with pytest.raises(DroneMetadataError, match="rel_alt"):
        replace(second, rel_alt_m=None).to_shot(camera, gimbal_pitch_deg=-90.0, gimbal_yaw_deg=0.0)
