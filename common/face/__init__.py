"""Everything about faces, in one place: reading images and videos, MediaPipe detection and Face Mesh, the 478-point
topology, dlib's 68 points, alignment (eye similarity and a five-point template fit) and CLAHE.

Used by landmark extraction (:mod:`common.smile.extract`), FER preprocessing (:mod:`common.fer.preprocess`),
``python -m common.predict`` and the demo-data generator. MediaPipe and dlib are imported only when a model runs.
"""
from common.face.align import (FIVE_POINT_TEMPLATE, NEEDS_KEYPOINTS, align_face, align_five_point, align_mesh_photo,
                               eye_alignment_matrix, eye_similarity_matrix, five_point_matrix, similarity_fit,
                               template_points, transform_points, warp)
from common.face.detect import DETECTOR_CHOICES, DETECTOR_MODELS, FaceDetection, detect_faces, detect_with_retry, iou
from common.face.enhance import clahe_lab, resize_bicubic
from common.face.media import (IMAGE_SUFFIXES, VIDEO_SUFFIXES, UnreadableMediaError, VideoReader, decode_image,
                               probe_video, read_frames, read_image, rgb_uint8)
from common.face.mesh import FaceMesh
from common.face.topology import N_POINTS, eye_centres, five_points

__all__ = [
    "FIVE_POINT_TEMPLATE", "NEEDS_KEYPOINTS", "align_face", "align_five_point", "align_mesh_photo",
    "eye_alignment_matrix", "eye_similarity_matrix", "five_point_matrix", "similarity_fit", "template_points",
    "transform_points", "warp", "DETECTOR_CHOICES", "DETECTOR_MODELS", "FaceDetection", "detect_faces",
    "detect_with_retry", "iou", "clahe_lab", "resize_bicubic", "IMAGE_SUFFIXES", "VIDEO_SUFFIXES",
    "UnreadableMediaError", "VideoReader", "decode_image", "probe_video", "read_frames", "read_image", "rgb_uint8",
    "FaceMesh", "N_POINTS", "eye_centres", "five_points",
]
