"""nonsite datasets: synthetic scenes with exact ground truth, YOLO-format datasets.

nonsite lives in its own environment; this package shadows the Hugging Face `datasets`
package on purpose and never depends on it.
"""

from datasets.errors import DatasetError, ImageWriteError, VideoWriteError

__all__ = ["DatasetError", "ImageWriteError", "VideoWriteError"]
