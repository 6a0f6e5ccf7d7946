"""Title-identifier features: which identifiers a title holds, per-class statistics, leave-one-out on training
documents, and their use by the stack (they carry what TF-IDF drowns, without leaking labels)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pipelines.document import Document
from pipelines.models.identifiers import TitleIdentifierFeatures, title_identifiers
from tests.pipelines._docs import make_docs
from tests.pipelines.test_stack import stack


def with_title(doc: Document, title: str) -> Document:
    first = dataclasses.replace(doc.pages[0], title=title)
    return dataclasses.replace(doc, pages=(first, *doc.pages[1:]))


def test_title_identifiers_keep_form_numbers_and_drop_years_and_small_numbers() -> None:
    title = "Form W-9 (Rev. October 2018) Request for Taxpayer; Form 1099-NEC, page 1 of 12, Form 6251."
    assert title_identifiers(title, 2000) == ["w9", "1099nec", "6251"]
    assert title_identifiers("Invoice 2023 total 45", 2000) == []
    assert title_identifiers("", 2000) == []


def test_features_point_at_the_class_whose_titles_carry_the_identifier() -> None:
    docs, _ = make_docs(3, seed=1)
    titles = ["Form 1040 income", "Form 1040 return", "Form 6251 minimum tax", "Invoice 77", "Form W-9"]
    labels = np.array([0, 0, 1, 2, 1])
    train = [with_title(docs[i % len(docs)], t) for i, t in enumerate(titles)]
    features = TitleIdentifierFeatures(max_chars=2000, common_share=0.2)
    features.fit(train, labels, 3)
    new = features.transform(
        [with_title(docs[0], "Form 1040 U.S. Individual"), with_title(docs[0], "Form 6251")]
    )
    k = 3
    # share: 1040 is in both class-0 titles, in no class-1 title; 6251 in one of the two class-1 titles
    assert new[0, 0] == pytest.approx(1.0) and new[0, 1] == 0.0
    assert new[1, 1] == pytest.approx(0.5) and new[1, 0] == 0.0
    # primary: the first identifier of both class-0 titles is 1040
    assert new[0, 2 * k + 0] == pytest.approx(1.0)


def test_training_features_are_out_of_fold() -> None:
    """A training document's features come from the other folds only: they never depend on its own label."""
    docs, _ = make_docs(3, seed=1)
    titles = ["Form 1040", "Form 1040", "Form 9999", "Form 1040"]
    labels = np.array([0, 0, 0, 1])
    features = TitleIdentifierFeatures(max_chars=2000, common_share=0.2)
    folds = [(np.array([1, 2, 3]), np.array([0])), (np.array([0, 3]), np.array([1, 2]))]
    own = features.fit_transform([with_title(docs[0], t) for t in titles], labels, 2, folds)
    assert own[0, 0] == pytest.approx(0.5)  # of the class-0 titles 1 and 2, one holds 1040
    assert own[0, 1] == pytest.approx(1.0)  # the class-1 title 3 holds it
    assert own[2, 0] == 0.0 and own[2, 1] == 0.0  # 9999 is in no title of the other fold
    flipped = features.fit_transform(
        [with_title(docs[0], t) for t in titles], np.array([1, 0, 0, 1]), 2, folds
    )
    np.testing.assert_allclose(flipped[0], own[0])  # its own label changed, its features did not


def identifier_docs(seed: int, n_per_class: int) -> tuple[list[Document], list[str]]:
    """Generated documents whose title names their form: the text alone says less than the title number."""
    docs, labels = make_docs(n_per_class, seed=seed)
    numbers = {"invoice": "Form 4506", "payslip": "Form 8821", "w9": "Form W-9"}
    return [with_title(doc, numbers[label]) for doc, label in zip(docs, labels, strict=True)], labels


def test_the_stack_reads_the_identifier_features_and_shuffled_labels_stay_at_chance() -> None:
    docs, labels = identifier_docs(31, 12)
    test, test_labels = identifier_docs(32, 6)
    model = stack(identifiers=True).fit(docs, labels)
    assert "title-identifier features" in model.combination_
    assert "identifiers" in model.recipe
    assert np.mean(model.predict(test) == np.asarray(test_labels)) > 0.9
    # no leakage: labels carrying no information, features computed leave-one-out
    rng = np.random.default_rng(3)
    noise = stack(identifiers=True).fit(docs, list(rng.permutation(labels)))
    assert float(np.mean(noise.oof_correct_)) < 0.55
    assert np.mean(noise.predict(test) == np.asarray(list(rng.permutation(test_labels)))) < 0.6


def test_margin_agree_scores_rank_every_disagreement_below_every_agreement() -> None:
    docs, labels = make_docs(10, seed=41)
    model = stack(review_score="margin_agree").fit(docs, labels)
    test, _ = make_docs(5, seed=42)
    proba, score = model.predict_proba_scored(test)
    np.testing.assert_allclose(proba, model.predict_proba(test))
    top = np.sort(proba, axis=1)
    margin = top[:, -1] - top[:, -2]
    assert np.all((score == pytest.approx(margin)) | (score == pytest.approx(margin - 1.0)))
    assert model.oof_review_score_.shape == (len(docs),)
    assert np.all(model.oof_review_score_ >= -1.0) and np.all(model.oof_review_score_ <= 1.0)
    plain = stack(review_score="max_probability").fit(docs, labels)
    np.testing.assert_allclose(plain.oof_review_score_, plain.oof_confidence_)
