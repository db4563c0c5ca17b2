"""Names the smile study accepts, each defined once: imported by the study's parameters (which stay free of numpy
and torch), the fusions and the statistics loader."""
from __future__ import annotations

SELECTIONS = ("val", "test", "last")  # reported / checkpointed epoch
FUSION_IMPLS = ("paper", "released")  # fusion forms: the paper's (corrected) or the released notebooks'
