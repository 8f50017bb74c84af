import textwrap

import pytest
from pydantic import ValidationError

from vision.camera import CameraConfig, CameraConfigError, load_camera_configs, mask_credentials
from vision.motion import MotionConfig
from vision.zones import Rule

GOOD = """\
cameras:
  - id: cam-01
    name: Xinhua Road east
    source: rtsp://admin:hunter2@10.0.0.21:554/Streaming/Channels/101
    fps: 5
    detect_size: {width: 1920, height: 1080}
    location: {lat: 31.2304, lon: 121.4737, address: 88 Xinhua Road}
    motion:
      threshold: 30
      recheck_interval_s: 15
    detector:
      type: onnx_yolo
      path: models/zoo/street.onnx
    zones:
      - name: sidewalk
        polygon: [[0, 600], [1920, 600], [1920, 1080], [0, 1080]]
        rule: no_occupation
        classes: [stall, goods]
        min_dwell_s: 300
        exclusions:
          - [[800, 700], [900, 700], [900, 800]]
        schedule:
          windows:
            - {days: [0, 1, 2, 3, 4], start: "07:00", end: "22:00"}
      - name: chimney
        polygon: [[100, 0], [400, 0], [400, 300]]
        rule: fume_watch
        classes: [plume]
  - id: cam-02
    name: Market gate
    source: /data/videos/market.mp4
"""


def write(tmp_path, text):
    path = tmp_path / "cameras.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_error(tmp_path, text) -> CameraConfigError:
    path = write(tmp_path, text)
    with pytest.raises(CameraConfigError) as info:
        load_camera_configs(path)
    assert str(path) in str(info.value)
    return info.value


def test_loads_a_good_file(tmp_path):
    first, second = load_camera_configs(write(tmp_path, GOOD))
    assert (first.id, first.fps, first.detect_size.width, first.location.lat) == ("cam-01", 5.0, 1920, 31.2304)
    assert [z.name for z in first.zones] == ["sidewalk", "chimney"]
    assert first.zones[0].rule is Rule.NO_OCCUPATION and first.zones[0].schedule.timezone == "Asia/Shanghai"
    assert first.motion.threshold == 30 and first.motion.alpha == MotionConfig().alpha
    assert first.detector == {"type": "onnx_yolo", "path": "models/zoo/street.onnx"}
    assert (second.zones, second.detector, second.location) == ((), None, None)


def test_configs_are_frozen(tmp_path):
    (camera, _) = load_camera_configs(write(tmp_path, GOOD))
    with pytest.raises(ValidationError, match="frozen"):
        camera.fps = 10


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("rtsp://admin:hunter2@10.0.0.21:554/ch1", "rtsp://admin:***@10.0.0.21:554/ch1"),
        ("rtsp://admin:p@ss:w0rd@cam.local/live", "rtsp://admin:***@cam.local/live"),
        ("rtsp://viewer@cam.local/live", "rtsp://viewer@cam.local/live"),
        ("rtsp://admin:pa/ss@10.0.0.21/ch1", "rtsp://admin:***@10.0.0.21/ch1"),
        ("rtsp://admin:p#s?w@10.0.0.21/ch1", "rtsp://admin:***@10.0.0.21/ch1"),
        ("http://10.0.0.5/snap.jpg?user=admin&pwd=hunter2&ch=1", "http://10.0.0.5/snap.jpg?user=admin&pwd=***&ch=1"),
        ("rtsp://cam.local/live", "rtsp://cam.local/live"),
        ("/data/videos/market.mp4", "/data/videos/market.mp4"),
    ],
)
def test_mask_credentials(url, masked):
    assert mask_credentials(url) == masked


def test_repr_and_str_never_show_the_password(tmp_path):
    (camera, _) = load_camera_configs(write(tmp_path, GOOD))
    assert camera.masked_source == "rtsp://admin:***@10.0.0.21:554/Streaming/Channels/101"
    for text in (repr(camera), str(camera)):
        assert "hunter2" not in text and "admin:***@" in text
    assert camera.source.startswith("rtsp://admin:hunter2@")  # the real URL is still there to connect with


def test_a_mistyped_key_is_an_error_with_its_path_line_and_a_suggestion(tmp_path):
    error = load_error(tmp_path, GOOD.replace("min_dwell_s: 300", "min_dwel_s: 300"))
    (problem,) = error.problems
    assert problem.key_path == "cameras.0.zones.0.min_dwel_s"
    assert problem.line == 19
    assert "unknown key; did you mean 'min_dwell_s'?" in str(error)


def test_a_short_polygon_names_its_key_path(tmp_path):
    error = load_error(
        tmp_path, GOOD.replace("polygon: [[100, 0], [400, 0], [400, 300]]", "polygon: [[100, 0], [400, 0]]")
    )
    assert "cameras.0.zones.1.polygon (line 26): at least 3 points, got 2" in str(error)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("fps: 5", "fps: 0", "cameras.0.fps (line 5): Input should be greater than 0"),
        ("rule: fume_watch", "rule: fumes", "cameras.0.zones.1.rule (line 27): Input should be 'no_occupation'"),
        ("threshold: 30", "threshold: 300", "cameras.0.motion.threshold (line 9): Input should be less than"),
        ("name: chimney", "name: sidewalk", "cameras.0.zones (line 14): zone names must be unique"),
        ("id: cam-02", "id: cam-01", "cameras (line 1): camera ids must be unique"),
        ("lat: 31.2304, ", "", "cameras.0.location (line 7): lat and lon must be given together"),
        ('start: "07:00"', 'start: "7am"', "cameras.0.zones.0.schedule.windows.0.start (line 24)"),
        ("[[0, 600], [1920, 600]", "[[0, 600], [1921, 600]", "point [1921, 600] outside the 1920x1080 detect size"),
        ("    name: Market gate\n", "", "cameras.1.name (line 29): required key is missing"),
        ("cameras:", "camera:", "camera (line 1): unknown key; did you mean 'cameras'?"),
    ],
)
def test_errors_name_the_key_path_and_line(tmp_path, old, new, expected):
    assert old in GOOD
    assert expected in str(load_error(tmp_path, GOOD.replace(old, new, 1)))


def test_every_problem_is_reported_at_once(tmp_path):
    text = GOOD.replace("fps: 5", "fps: -1").replace("rule: fume_watch", "rule: fumes")
    assert [p.key_path for p in load_error(tmp_path, text).problems] == ["cameras.0.fps", "cameras.0.zones.1.rule"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cameras:\n  - id: a\n    name: [b, c\n    source: d\n", "malformed YAML at line 4, column 11"),
        ("cameras:\n  - id: a\n    id: b\n", "duplicate key 'id'"),
        ("", "but got an empty file"),
        ("- id: a\n", "top-level 'cameras:' list, but got list"),
        ("cameras: []\n", "cameras (line 1): Tuple should have at least 1 item"),
    ],
)
def test_file_level_errors(tmp_path, text, expected):
    assert expected in str(load_error(tmp_path, text))


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(CameraConfigError, match=r"nowhere\.yaml: cannot read"):
        load_camera_configs(tmp_path / "nowhere.yaml")


def test_every_camera_field_is_described():
    assert all(info.description for info in CameraConfig.model_fields.values())
