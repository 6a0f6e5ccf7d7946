"""Candidate document classifiers behind one scikit-learn-style interface, their calibration and persistence.

- :mod:`~pipelines.models.base`: errors, temperature calibration, the calibrated base class;
- :mod:`~pipelines.models.text`, :mod:`~pipelines.models.visual`, :mod:`~pipelines.models.fusion`,
  :mod:`~pipelines.models.transformer`: the candidates;
- :mod:`~pipelines.models.title`, :mod:`~pipelines.models.semantic`, :mod:`~pipelines.models.hog`: the views of
  issue 11 (title block beside the text, sentence embeddings, page-image HOG), candidates on their own;
- :mod:`~pipelines.models.reference`: the plain baseline every candidate is benchmarked against;
- :mod:`~pipelines.models.stack`: a meta-model over the out-of-fold probabilities of other candidates (views);
- :mod:`~pipelines.models.factory`: candidates by name from params.yaml;
- :mod:`~pipelines.models.persistence`: save and load a fitted candidate with its metadata.

The dependency order is one way (base <- candidates <- factory <- persistence), so there is no import cycle.
"""

from pipelines.models.base import (
    Calibration,
    CandidateUnavailable,
    ModelLoadError,
    fit_temperature,
    out_of_fold_temperature,
    review_threshold,
    softmax,
)
from pipelines.models.factory import CANDIDATES, make_candidate
from pipelines.models.fusion import FusionClassifier
from pipelines.models.hog import HogClassifier
from pipelines.models.persistence import candidate_name, library_versions, load_model, save_model
from pipelines.models.reference import ReferenceClassifier
from pipelines.models.semantic import SemanticClassifier
from pipelines.models.stack import StackClassifier
from pipelines.models.text import TextClassifier
from pipelines.models.title import TitleClassifier
from pipelines.models.transformer import TransformerClassifier, build_tiny_checkpoint
from pipelines.models.visual import VisualClassifier

__all__ = [
    "CANDIDATES",
    "Calibration",
    "CandidateUnavailable",
    "FusionClassifier",
    "HogClassifier",
    "ModelLoadError",
    "ReferenceClassifier",
    "SemanticClassifier",
    "StackClassifier",
    "TextClassifier",
    "TitleClassifier",
    "TransformerClassifier",
    "VisualClassifier",
    "build_tiny_checkpoint",
    "candidate_name",
    "fit_temperature",
    "library_versions",
    "load_model",
    "make_candidate",
    "out_of_fold_temperature",
    "review_threshold",
    "save_model",
    "softmax",
]
