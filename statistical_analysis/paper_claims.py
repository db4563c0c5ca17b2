"""What the papers report, each number with its source; the tables put these beside the measured values.

Smile numbers: RPT = Hasan et al., "D-FuseSmileNet" JHU report (2024), the predecessor of the ICDM 2025 paper with the
same headline numbers; README = the HadaSmileNet README; PAGE = its project
page. HAFEM numbers: Chatterjee, JAIMLNN 6(1) 2026, table / section named.
Published FER state of the art for context: :data:`FER_PUBLISHED_BEST`, each number with its method.
"""
from __future__ import annotations

SMILE_DATASETS = ("UvA-NEMO", "MMI", "SPOS", "BBC")
FER_DATASETS = ("FER2013", "RAF-DB", "AffectNet", "FERPlus")

# --- HadaSmileNet ------------------------------------------------------------------------------------------------
SMILE_TABLE4_SOURCE = "RPT Table 4 (accuracy %, best epoch on the test fold)"
# registry name -> (paper name, {dataset: accuracy %}), in RPT's row order
SMILE_TABLE4: dict[str, tuple[str, dict[str, float]]] = {
    "concat": ("Concatenation", {"UvA-NEMO": 87.9, "MMI": 99.7, "SPOS": 97.2, "BBC": 95.0}),
    "gated_concat": ("Gated Concatenation", {"UvA-NEMO": 87.9, "MMI": 94.7, "SPOS": 93.0, "BBC": 95.0}),
    "additive": ("Additive Fusion", {"UvA-NEMO": 81.4, "MMI": 89.7, "SPOS": 92.0, "BBC": 85.0}),
    "hadamard": ("Hadamard", {"UvA-NEMO": 88.7, "MMI": 99.7, "SPOS": 98.5, "BBC": 100.0}),
    "hadamard_gated_concat": ("Gated Concat + Hadamard", {"UvA-NEMO": 87.9, "MMI": 99.7, "SPOS": 93.4, "BBC": 100.0}),
    "attention": ("Attention", {"UvA-NEMO": 87.1, "MMI": 89.4, "SPOS": 91.6, "BBC": 90.0}),
    "mh_attention": ("Multi-head Attention", {"UvA-NEMO": 85.4, "MMI": 91.7, "SPOS": 90.4, "BBC": 85.0}),
    "cross_attention": ("Cross Attention", {"UvA-NEMO": 83.8, "MMI": 92.3, "SPOS": 85.7, "BBC": 90.0}),
    "mh_cross_attention": ("MH Cross Attention", {"UvA-NEMO": 85.4, "MMI": 92.1, "SPOS": 86.2, "BBC": 85.0}),
    "film": ("FiLM", {"UvA-NEMO": 83.8, "MMI": 94.7, "SPOS": 92.8, "BBC": 90.0}),
    "film_hadamard": ("FiLM + Hadamard", {"UvA-NEMO": 87.1, "MMI": 92.1, "SPOS": 97.8, "BBC": 95.0}),
    "bilinear": ("Bilinear Pooling", {"UvA-NEMO": 83.8, "MMI": 95.6, "SPOS": 92.8, "BBC": 95.0}),
    "bilinear_hadamard": ("Bilinear + Hadamard", {"UvA-NEMO": 87.1, "MMI": 93.1, "SPOS": 96.7, "BBC": 100.0}),
    "factorized_bilinear": ("Factorized Bilinear", {"UvA-NEMO": 83.8, "MMI": 93.3, "SPOS": 97.7, "BBC": 95.0}),
    "factorized_bilinear_hadamard": ("Factorized Bilinear + Hadamard",
                                     {"UvA-NEMO": 85.4, "MMI": 94.7, "SPOS": 95.4, "BBC": 100.0}),
}
SMILE_FUSIONS = tuple(SMILE_TABLE4)
SMILE_BASELINES = ("meshsmilenet", "deepmarkernet", "dmarker_mlp", "dmarker_svm", "dmarker_logreg")
SMILE_BASELINE_NAMES = {
    "meshsmilenet": "MeshSmileNet (deep branch only)", "deepmarkernet": "DeepMarkerNet (auxiliary D-Marker loss)",
    "dmarker_mlp": "D-Marker MLP", "dmarker_svm": "D-Marker + linear SVM", "dmarker_logreg": "D-Marker + logistic reg.",
}

SMILE_TABLE5_SOURCE = "RPT Table 5 (accuracy %)"
# (method, year, {dataset: accuracy %}); None = not reported. Mandal'17 UvA: 80.4 (Mandal'16: 78.1).
SMILE_TABLE5: tuple[tuple[str, int, dict[str, float | None]], ...] = (
    ("Cohn'04", 2004, {"UvA-NEMO": 77.3, "MMI": 81.0, "SPOS": 73.0, "BBC": 75.0}),
    ("Dibeklioglu'10", 2010, {"UvA-NEMO": 71.1, "MMI": 74.0, "SPOS": 68.0, "BBC": 85.0}),
    ("Pfister'11", 2011, {"UvA-NEMO": 73.1, "MMI": 81.0, "SPOS": 67.5, "BBC": 70.0}),
    ("Wu'14", 2014, {"UvA-NEMO": 91.4, "MMI": 86.1, "SPOS": 79.5, "BBC": 90.0}),
    ("Dibeklioglu'15", 2015, {"UvA-NEMO": 89.8, "MMI": 88.1, "SPOS": 77.5, "BBC": 90.0}),
    ("Wu'17", 2017, {"UvA-NEMO": 93.9, "MMI": 92.2, "SPOS": 81.2, "BBC": 90.0}),
    ("Mandal'17", 2017, {"UvA-NEMO": 80.4, "MMI": None, "SPOS": None, "BBC": None}),
    ("RealSmileNet'20", 2020, {"UvA-NEMO": 82.1, "MMI": 92.0, "SPOS": 86.2, "BBC": 90.0}),
    ("Vanilla ViT'20", 2020, {"UvA-NEMO": 78.4, "MMI": 99.0, "SPOS": 93.5, "BBC": 95.0}),
    ("P4Transformer'21", 2021, {"UvA-NEMO": 74.9, "MMI": 91.3, "SPOS": 82.9, "BBC": 85.0}),
    ("PSTNet'22", 2022, {"UvA-NEMO": 72.9, "MMI": 94.3, "SPOS": 87.1, "BBC": 95.0}),
    ("MeshSmileNet'22", 2022, {"UvA-NEMO": 85.0, "MMI": 99.0, "SPOS": 94.4, "BBC": 95.0}),
    ("DeepMarkerNet'24", 2024, {"UvA-NEMO": 87.9, "MMI": 99.7, "SPOS": 97.8, "BBC": 95.0}),
    ("HadaSmileNet'25", 2025, {"UvA-NEMO": 88.7, "MMI": 99.7, "SPOS": 98.5, "BBC": 100.0}),
)
# Which Table-5 row a measured baseline corresponds to (the hand-crafted SVM has no published number here:
# the D-Marker + SVM pipeline of Dibeklioglu's ECCV 2012 / TMM 2015 papers is not the same protocol).
SMILE_BASELINE_PAPER_ROW = {"meshsmilenet": "MeshSmileNet'22", "deepmarkernet": "DeepMarkerNet'24"}

SMILE_EFFICIENCY_CLAIMS = (
    # (what, measured quantity, claimed reduction %, source)
    ("parameters", "params_total", 26.0, "README: '26.0% vs DeepMarkerNet' (no test named)"),
    ("training time", "train_seconds", 42.3, "README: 'Training Time Reduction: 42.3% (p < 0.001)' (test not named)"),
    ("inference latency", "infer_ms_per_video", 26.0, "PAGE: '26% ... inference latency' (vs multi-task baselines)"),
)
SMILE_CLAIMED_SIGNIFICANCE = {"UvA-NEMO": "p < 0.001", "MMI": "not claimed", "SPOS": "p < 0.001", "BBC": "p < 0.001"}

# --- HAFEM -------------------------------------------------------------------------------------------------------
HAFEM_TABLE3_SOURCE = "HAFEM Table 3 (FER2013; %, AUC, FPS on an RTX 3090)"
# (paper row, accuracy, precision, recall, F1, AUC, FPS)
HAFEM_TABLE3: tuple[tuple[str, float, float, float, float, float, float], ...] = (
    ("ResNet-50 [5]", 71.4, 69.8, 70.2, 70.0, 0.881, 45),
    ("VGGFace2 TL [7]", 83.1, 82.0, 81.8, 81.9, 0.921, 38),
    ("CNN+LSTM [6]", 87.3, 86.1, 85.9, 86.0, 0.942, 22),
    ("GAN-Aug [8]", 88.3, 87.4, 87.0, 87.2, 0.948, 31),
    ("ViT-Base [9]", 73.6, 72.8, 73.1, 72.9, 0.896, 28),
    ("EfficientNet-B4 [10]", 89.5, 88.7, 88.3, 88.5, 0.953, 41),
    ("Swin-T [21]", 88.7, 87.6, 87.9, 87.7, 0.951, 24),
    ("Cross-Attn", 90.1, 89.3, 89.1, 89.2, 0.963, 19),
    ("DualPath CNN [14]", 91.2, 90.5, 90.2, 90.3, 0.967, 33),
    ("HAFEM (Ours)", 94.7, 94.1, 93.8, 93.9, 0.982, 52),
)
# paper row -> measured variant names: the paper-size model first, then its demo stand-in (common/fer/model.py)
HAFEM_TABLE3_VARIANTS = {
    "ResNet-50 [5]": ("resnet50", "resnet18"),
    "ViT-Base [9]": ("vit_base_patch16_224", "vit_tiny_patch16_224"),
    "EfficientNet-B4 [10]": ("efficientnet_b4", "efficientnet_b0"),
    "Swin-T [21]": ("swin_tiny_patch4_window7_224", "swin_demo"),
    "HAFEM (Ours)": ("hafem",),
}
HAFEM_NOT_REBUILT = {
    "VGGFace2 TL [7]": "not rebuilt: needs VGGFace2 weights (none offline); network unspecified",
    "CNN+LSTM [6]": "not rebuilt: architecture not described",
    "GAN-Aug [8]": "not rebuilt: GAN augmenter not described",
    "Cross-Attn": "not rebuilt: no citation, architecture not described",
    "DualPath CNN [14]": "not rebuilt: architecture not described",
}
HAFEM_BASELINE_VARIANTS = tuple(v for row, vs in HAFEM_TABLE3_VARIANTS.items() if row != "HAFEM (Ours)" for v in vs)

HAFEM_DATASET_CLAIMS_SOURCE = "HAFEM abstract (accuracy %)"
HAFEM_DATASET_CLAIMS = {"FER2013": 94.7, "RAF-DB": 95.1, "AffectNet": 88.9, "FERPlus": 92.4}
# Published best single models, for context only: LHC-Net (Pecoraro et al., arXiv:2111.07224), POSTER++ (Mao et al.,
# arXiv:2301.12149) and DDAMFN++ (the DDAMFN authors' improved model; Zhang et al., Electronics 12(17), 2023).
FER_PUBLISHED_BEST = {
    "FER2013": (74.42, "LHC-Net (2021)"),
    "RAF-DB": (92.34, "DDAMFN++ [secondary]"),
    "AffectNet": (67.49, "POSTER++, 7-class; 8-class best 65.04 (DDAMFN++)"),
    "FERPlus": (92.28, "POSTER++ [secondary]"),
}

HAFEM_ABLATION_SOURCE = "HAFEM §4 text and Fig. 3 (FER2013 accuracy %)"
# (rung, paper accuracy, accepted variant names or glob patterns, first match wins). common/fer/run.py writes the
# rungs as "ablation<i>_<model>" (rungs 1-4 trained with cross-entropy, rung 5 = the full model); the plain model
# names are a fallback for runs that trained a rung on its own.
HAFEM_ABLATION: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("ResNet-50", 71.4, ("ablation1_*", "resnet50", "resnet18")),
    ("EfficientNet-B5", 84.2, ("ablation2_*", "backbone_only")),
    ("+ Transformer", 88.6, ("ablation3_*", "hafem_no_cbam")),
    ("+ CBAM", 91.8, ("ablation4_*", "hafem_ce")),
    ("+ compound loss (HAFEM)", 94.7, ("ablation5_*", "hafem")),
)

HAFEM_PER_CLASS_SOURCE = "HAFEM §4 text on Fig. 2 (FER2013 per-class F1 %)"
HAFEM_PER_CLASS_F1 = {"happy": 97.9, "contempt": 89.2}  # contempt is not a FER2013 class: the paper's own mismatch
HAFEM_MINORITY_GAINS = {"disgust": 4.1, "contempt": 5.7}  # F1 pp over CE-only training (§4)

HAFEM_ZEROSHOT_SOURCE = "HAFEM §4 (trained on FER2013, zero-shot accuracy %)"
HAFEM_ZEROSHOT = {"RAF-DB": 87.3, "AffectNet": 79.1}
HAFEM_ZEROSHOT_NOTE = ("§5 instead calls 95.1 % on RAF-DB 'without fine-tuning', while §4 gives 95.1 % after a "
                       "20-epoch fine-tune and 87.3 % zero-shot.")

HAFEM_FINETUNE_SOURCE = "HAFEM §4 (FER2013 model fine-tuned 20 epochs on RAF-DB train, RAF-DB test accuracy %)"
HAFEM_FINETUNE = {"RAF-DB": 95.1}
HAFEM_FINETUNE_VARIANT = "hafem_finetune"  # common/fer/finetune.py

# --- HAFEM claims set beside what we computed or counted ----------------------------------------------------------
# Parameter count: built with common.fer.hafem.HAFEM and checked in closed form by common.fer.sizes (tests recompute
# every number below). FER+ label sources: the released fer2013new.csv vs the data/FER2013*/label.csv files; tests
# recount them from the real files when present.
HAFEM_PARAMS_CLAIM = 31.2e6
HAFEM_PARAMS_MEASURED = {"after_backbone": 230_447_898, "stages": 230_493_283}  # B5, 6 × (d 2048, FF 4096), 7 classes
HAFEM_PARAMS_BACKBONE = 28_340_784  # timm efficientnet_b5 features; + 1000-class classifier = 30.39 M (paper 30.4 M)
HAFEM_PARAMS_TRANSFORMER = 201_562_112  # the six 2048-wide layers + 49 positions
# depth -> (d_model, d_ff = 2 d, total) closest to 31.2 M (common.fer.sizes.sizes_near)
HAFEM_PARAMS_SIZES_FOR_CLAIM = {1: (424, 848, 31_203_594), 2: (320, 640, 31_187_034), 4: (240, 480, 31_226_794),
                                6: (200, 400, 31_221_954)}
FERPLUS_SPLITS = ("FER2013Train", "FER2013Valid", "FER2013Test")
FERPLUS_VOTES_DIFFER = {"FER2013Train": 1073, "FER2013Valid": 246, "FER2013Test": 283}  # same image, other votes
# majority-labelled images (FER+ majority rule; unknown / NF / no majority dropped)
FERPLUS_MAJORITY_LABEL_CSV = {"FER2013Train": 25_045, "FER2013Valid": 3_191, "FER2013Test": 3_137}
FERPLUS_MAJORITY_NEW_CSV = {"FER2013Train": 25_057, "FER2013Valid": 3_199, "FER2013Test": 3_152}  # named images
# ... counting also the fer2013new.csv rows without an image name (FER+ excluded them; 3 train, 1 test)
FERPLUS_MAJORITY_NEW_CSV_ALL_ROWS = {"FER2013Train": 25_060, "FER2013Valid": 3_199, "FER2013Test": 3_153}
FERPLUS_MODES_OFFERED = ("majority", "probability", "crossentropy", "multi_target")  # the ferplus_mode parameter

HAFEM_TESTS_CLAIM = ("HAFEM §4: paired t-tests vs all ten baselines p < 0.001, Cohen's d 0.95-2.84 "
                     "(pairing unit and d variant not stated)")
HAFEM_FPS_CLAIM = "HAFEM abstract / §5: 52 FPS on an RTX 3090 (second best 44 FPS in §5, 45 in Table 3)"
