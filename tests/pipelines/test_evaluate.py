import json

import numpy as np
import pytest

from pipelines.evaluate import (
    compute_metrics,
    confusion_matrix_png,
    cross_validate,
    expected_calibration_error,
    learning_curve,
    n_folds_for,
    write_report,
)
from pipelines.models import CandidateUnavailable, VisualClassifier
from tests.params import candidate
from tests.pipelines._docs import make_docs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def corpus():
    return make_docs(5, seed=11)


def visual():
    return candidate("visual", random_state=3)


def test_cross_validate_is_deterministic_for_a_seed(corpus):
    docs, labels = corpus
    first = cross_validate(visual, docs, labels, seed=1, max_folds=5, ece_bins=10)
    second = cross_validate(visual, docs, labels, seed=1, max_folds=5, ece_bins=10)
    assert first.metrics == second.metrics
    assert first.fold == second.fold
    np.testing.assert_array_equal(first.proba, second.proba)
    other = cross_validate(visual, docs, labels, seed=2, max_folds=5, ece_bins=10)
    assert other.fold != first.fold


def test_cross_validate_reports_out_of_fold_predictions_and_metrics(corpus):
    docs, labels = corpus
    report = cross_validate(lambda: candidate("text"), docs, labels, seed=0, max_folds=5, ece_bins=10)
    assert report.n_folds == 5
    assert report.classes == ["invoice", "payslip", "w9"]
    assert report.proba.shape == (15, 3)
    assert sorted(set(report.fold)) == [0, 1, 2, 3, 4]
    assert report.metrics["accuracy"] >= 0.9
    assert set(report.metrics["per_class"]) == set(report.classes)
    assert report.sha256 == [d.sha256 for d in docs]
    assert len(report.fit_seconds) == 5
    json.dumps(report.metrics)


def test_k_adapts_to_the_smallest_class():
    docs, labels = make_docs(3, seed=2)
    assert n_folds_for(labels, 5) == 3
    assert n_folds_for(labels, 2) == 2
    assert cross_validate(visual, docs, labels, seed=0, max_folds=5, ece_bins=5).n_folds == 3
    assert n_folds_for(["a", "a", "b", "b", "b"], 1) == 2  # never fewer than 2


def test_a_class_with_one_document_is_a_clear_error():
    docs, labels = make_docs(3, seed=2)
    docs, labels = docs + make_docs(1, seed=3, classes=("lonely",))[0], labels + ["lonely"]
    with pytest.raises(ValueError, match=r"at least 2 documents per class, found fewer in 'lonely' \(1\)"):
        cross_validate(visual, docs, labels, seed=0, max_folds=5, ece_bins=10)
    with pytest.raises(ValueError, match=r"at least 2 classes, found 1 \('w9'\)"):
        cross_validate(visual, docs, ["w9"] * len(docs), seed=0, max_folds=5, ece_bins=10)


def test_unavailable_candidates_propagate_for_the_caller_to_skip(corpus):
    docs, labels = corpus

    class Missing(VisualClassifier):
        def fit(self, X, y):
            raise CandidateUnavailable("no checkpoint")

    def missing():
        return Missing(**candidate("visual").get_params())

    with pytest.raises(CandidateUnavailable, match="no checkpoint"):
        cross_validate(missing, docs, labels, seed=0, max_folds=3, ece_bins=10)


def test_expected_calibration_error_of_a_calibrated_toy_is_zero():
    classes = ["a", "b"]
    proba = np.tile([0.8, 0.2], (100, 1))
    y_true = ["a"] * 80 + ["b"] * 20  # 80 % right at 80 % confidence
    assert expected_calibration_error(y_true, proba, classes, 10) == pytest.approx(0.0, abs=1e-12)


def test_expected_calibration_error_of_an_overconfident_toy():
    proba = np.tile([1.0, 0.0], (10, 1))
    y_true = ["a"] * 5 + ["b"] * 5
    assert expected_calibration_error(y_true, proba, ["a", "b"], 10) == pytest.approx(0.5)
    assert expected_calibration_error([], np.zeros((0, 2)), ["a", "b"], 10) == 0.0


def test_compute_metrics_values_and_label_order():
    y_true = ["b", "a", "a", "c"]
    y_pred = ["b", "a", "b", "c"]
    proba = np.array([[0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.4, 0.5, 0.1], [0.1, 0.1, 0.8]])
    m = compute_metrics(y_true, y_pred, proba, ["a", "b", "c"], ece_bins=10)
    assert m["accuracy"] == 0.75
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    assert m["per_class"]["a"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3, abs=1e-6),
        "support": 2,
    }
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3, abs=1e-6)
    assert m["log_loss"] > 0 and 0 <= m["ece"] <= 1
    json.dumps(m)
    assert compute_metrics(y_true, y_pred, None, ["a", "b", "c"], 10)["ece"] is None


def test_write_report_writes_metrics_confusion_rows_png_and_predictions(corpus, tmp_path):
    docs, labels = corpus
    report = cross_validate(visual, docs, labels, seed=0, max_folds=3, ece_bins=10)
    paths = write_report(report, tmp_path / "eval")
    metrics = json.loads(paths["metrics"].read_text())
    assert {"accuracy", "macro_f1", "ece", "log_loss", "n_docs", "n_folds", "per_class"} <= set(metrics)
    assert all(not isinstance(v, dict) for k, v in metrics.items() if k != "per_class")
    rows = json.loads(paths["confusion"].read_text())
    assert len(rows) == len(docs) and set(rows[0]) == {"actual", "predicted"}
    assert [r["actual"] for r in rows] == labels
    assert paths["confusion_png"].read_bytes()[:8] == PNG_MAGIC
    predictions = json.loads(paths["predictions"].read_text())
    assert predictions[0]["sha256"] == docs[0].sha256
    assert set(predictions[0]) == {"sha256", "name", "actual", "predicted", "confidence", "scores", "fold"}
    assert sum(predictions[0]["scores"].values()) == pytest.approx(1.0, abs=1e-5)


def test_confusion_matrix_png_leaves_pyplot_alone(tmp_path):
    import sys

    path = confusion_matrix_png([[3, 1], [0, 4]], ["x", "y"], tmp_path / "sub" / "cm.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert "matplotlib.pyplot" not in sys.modules


def test_learning_curve_caps_sizes_records_skips_and_is_deterministic():
    docs, labels = make_docs(4, seed=5)

    def unavailable():
        raise CandidateUnavailable("base checkpoint missing")

    factories = {"visual": visual, "transformer": unavailable}
    rows = learning_curve(factories, docs, labels, sizes=(2, 10), draws=2, seed=0)
    assert len(rows) == 2 * 2 * 2
    ok = [r for r in rows if r["status"] == "ok"]
    skipped = [r for r in rows if r["status"] == "skipped"]
    assert len(ok) == 4 and len(skipped) == 4
    assert all(r["reason"] == "base checkpoint missing" for r in skipped)
    capped = [r for r in ok if r["size"] == 10]
    assert all(r["n_per_class"] == {"invoice": 3, "payslip": 3, "w9": 3} for r in capped)
    assert all(r["n_train"] == 9 and r["n_test"] == 3 for r in capped)
    small = [r for r in ok if r["size"] == 2]
    assert all(r["n_per_class"]["w9"] == 2 and r["n_test"] == 6 for r in small)
    assert all(0 <= r["accuracy"] <= 1 and r["fit_seconds"] >= 0 for r in ok)
    again = learning_curve(factories, docs, labels, sizes=(2, 10), draws=2, seed=0)
    strip = [{k: v for k, v in r.items() if k != "fit_seconds"} for r in rows]
    assert strip == [{k: v for k, v in r.items() if k != "fit_seconds"} for r in again]
    json.dumps(rows)
