"""Evidence clips are H.264 MP4s a browser plays, with every source pixel kept."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from pipelines.sealing import SealingError, encode_h264_clip


def _decode(data: bytes) -> tuple[str, str, str, int, int, int]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        context = stream.codec_context
        return context.name, context.pix_fmt, context.profile, context.width, context.height, frames


@pytest.mark.parametrize(("height", "width"), [(360, 640), (241, 321)])
def test_clip_is_h264_yuv420p_with_the_index_first(height, width):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (height, width, 3), np.uint8) for _ in range(12)]
    data = encode_h264_clip(frames, 12.5)
    assert data[4:8] == b"ftyp"
    assert 0 < data.find(b"moov") < data.find(b"mdat")  # faststart: playable while downloading
    name, pix_fmt, profile, w, h, count = _decode(data)
    assert (name, pix_fmt, count) == ("h264", "yuv420p", 12)
    assert profile in ("High", "Main", "Constrained Baseline", "Baseline")
    assert (w, h) == (width + width % 2, height + height % 2)


def test_an_empty_clip_is_refused():
    with pytest.raises(SealingError, match="at least one frame"):
        encode_h264_clip([], 25.0)
