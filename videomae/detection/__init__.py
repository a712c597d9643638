"""Spatio-temporal action detection (AVA): data in the official formats, the frame-mAP evaluator, the detect
stage for the training engine, and pictures of detections. See docs/detection.md.

Public API:
    DetectionConfig                              the `[detection]` settings of a recipe
    frame_map, evaluate_files, FrameMap          the official AVA frame mAP@0.5
    read_annotations, read_results, write_results, read_excluded, read_label_map, read_proposals   file formats
    build_detection_dataset                      keyframe clips with their person boxes
"""

from videomae.lazy import lazy_exports

# Imported on first use: the formats and the evaluator need only numpy; the dataset pulls in torchvision.
_EXPORTS = {
    "DetectionConfig": "config",
    "FrameMap": "evaluation",
    "evaluate_files": "evaluation",
    "frame_map": "evaluation",
    "read_annotations": "formats",
    "read_excluded": "formats",
    "read_label_map": "formats",
    "read_proposals": "formats",
    "read_results": "formats",
    "write_results": "formats",
    "build_detection_dataset": "data",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
