"""One-stage detectors of the CSPNet paper (CSPPeleeNet-EFM, PeleeNet-YOLO, PeleeNet-PRN) with box
decoding, a YOLO loss, TensorFlow NMS, offline digit scenes, an mAP@0.5 evaluator and the EFM
memory measurement."""
from .models import (  # noqa: F401
    DETECTORS, TINY_DETECTORS, CSPPeleeNetEFM, DetectorInfo, PeleeNetPRN, PeleeNetYOLO, build_detector,
    check_anchors, check_num_classes, detector_info)
