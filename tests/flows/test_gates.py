"""Gates and promotion decisions: pure functions, fail closed."""

from __future__ import annotations

import pytest

from pipelines.gates import check_gates, forward_accuracy, should_promote

T = {"min_accuracy": 0.8, "min_macro_f1": 0.75, "min_class_recall": 0.5, "max_regression": 0.02}


def metrics(acc: float = 0.9, f1: float = 0.88, recalls: dict[str, float] | None = None) -> dict:
    recalls = recalls if recalls is not None else {"invoice": 0.9, "w9": 0.8}
    return {"accuracy": acc, "macro_f1": f1, "per_class": {k: {"recall": v} for k, v in recalls.items()}}


def test_good_candidate_passes():
    assert check_gates(metrics(), T) == []


def test_thresholds_give_reasons_with_expected_and_found():
    reasons = check_gates(metrics(acc=0.7, f1=0.6, recalls={"invoice": 0.9, "w9": 0.4}), T)
    assert reasons == [
        "accuracy 0.700 below the minimum 0.800",
        "macro_f1 0.600 below the minimum 0.750",
        "recall of class 'w9' 0.400 below the floor 0.500",
    ]


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"accuracy": 0.9, "macro_f1": 0.9},
        {"accuracy": None, "macro_f1": float("nan"), "per_class": {"a": {}}},
    ],
)
def test_missing_metrics_fail_closed(bad):
    assert check_gates(bad, T)


def test_bad_thresholds_are_rejected():
    with pytest.raises(ValueError, match="gate.max_regression: expected a number, found None"):
        check_gates(metrics(), {**T, "max_regression": None})
    with pytest.raises(ValueError, match=r"gate.max_regression: expected a number <= 1"):
        check_gates(metrics(), {**T, "max_regression": 2})
    with pytest.raises(ValueError, match="gate.min_accuracy: missing key"):
        check_gates(metrics(), {k: v for k, v in T.items() if k != "min_accuracy"})
    with pytest.raises(ValueError, match="gate.min_acuracy: unknown key; expected one of min_accuracy"):
        check_gates(metrics(), {**T, "min_acuracy": 0.9})


def test_regression_against_champion_on_same_data():
    assert check_gates(metrics(acc=0.9, f1=0.88), T, champion_metrics=metrics(acc=0.91, f1=0.89)) == []
    reasons = check_gates(metrics(acc=0.85, f1=0.88), T, champion_metrics=metrics(acc=0.9, f1=0.88))
    assert reasons == [
        "accuracy 0.850 regresses against the champion's 0.900 on the same data (tolerance 0.020)"
    ]
    assert check_gates(metrics(), T, champion_metrics={}) != []  # unmeasured champion: fail closed


def test_forward_accuracy_counts_and_gates():
    fwd = forward_accuracy(["a", "b", "a", "b"], ["a", "b", "a", "a"], ["a", "b", "b", "a"])
    assert (fwd.n_docs, fwd.champion, fwd.candidate) == (4, 0.75, 0.5)
    reasons = check_gates(metrics(), T, forward=fwd)
    assert reasons == [
        "accuracy 0.500 on the 4 new documents regresses against the champion's forward accuracy 0.750 "
        "(tolerance 0.020)"
    ]
    assert check_gates(metrics(), T, forward=forward_accuracy([], [])) == []
    assert forward_accuracy([], []).champion is None
    with pytest.raises(ValueError, match="expected one prediction per new document"):
        forward_accuracy(["a"], [])


def test_should_promote():
    assert should_promote(metrics(), None, 0.02)
    assert should_promote(metrics(acc=0.9, f1=0.87), metrics(acc=0.9, f1=0.88), 0.02)
    assert not should_promote(metrics(acc=0.9, f1=0.80), metrics(acc=0.9, f1=0.88), 0.02)
    assert not should_promote({}, None, 0.02)
