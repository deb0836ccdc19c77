"""leximind.evaluate: ROUGE, macro-F1 and the bootstrap by hand against rouge-score, scikit-learn and SciPy; the
metrics the library computes on hand-checked cases."""

import math

import pytest
import torch

from leximind.evaluate import bootstrap_ci, classification_metrics, lead, macro_f1, rouge, rouge_l, rouge_n
from leximind.multitask import load_cnn_dailymail


def test_rouge_and_classification_metrics_by_hand():
    r = rouge(["the cat sat"], ["the cat sat on the mat"])  # unigram precision 3/3, recall 3/6
    assert math.isclose(r["rouge1"], 100 * 2 * 0.5 / 1.5) and math.isclose(r["rouge2"], 100 * 2 * 1 * 0.4 / 1.4)
    assert rouge(["One. Two!"], ["One.\nTwo!"])["rougeLsum"] == 100.0  # sentences are split for ROUGE-Lsum
    with pytest.raises(ValueError):
        rouge([], [])
    m = classification_metrics([0, 0, 1, 2], [0, 1, 1, 1], ["a", "b", "c"])
    assert m["accuracy"] == 0.5 and m["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    assert math.isclose(m["macro_f1"], (2 / 3 + 0.5 + 0) / 3) and m["per_class"]["b"]["support"] == 1


def test_rouge_by_hand_matches_rouge_score():
    # Catches: unclipped n-gram counts, an F1 that is not the harmonic mean, an LCS
    # that counts common substrings instead of subsequences, tokens not lowercased or punctuation kept.
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)
    test = load_cnn_dailymail("builtin")["test"]
    pairs = [(lead(a, k), r) for a, r in zip(test["article"], test["highlights"]) for k in (1, 3)]
    pairs += [("the the the cat", "The cat, the cat!"), ("", "a b"), ("U.S.-led talks", "us led talks")]
    for prediction, reference in pairs:
        ref = scorer.score(reference, prediction)
        assert math.isclose(rouge_n(prediction, reference, 1), ref["rouge1"].fmeasure, abs_tol=1e-12)
        assert math.isclose(rouge_n(prediction, reference, 2), ref["rouge2"].fmeasure, abs_tol=1e-12)
        assert math.isclose(rouge_l(prediction, reference), ref["rougeL"].fmeasure, abs_tol=1e-12)
    with pytest.raises(ValueError):
        rouge_n("a b", "a b", 0)


def test_macro_f1_and_bootstrap_by_hand_match_their_libraries():
    # Catches: classes absent from the predictions left out (or ones absent from both counted), precision and recall
    # divided by the wrong counts; a bootstrap that resamples without replacement (its interval collapses) or reads
    # the wrong percentiles.
    import numpy as np
    from scipy.stats import bootstrap
    from sklearn.metrics import f1_score

    g = torch.Generator().manual_seed(0)
    for classes in (2, 6):
        y_true = torch.randint(classes, (300,), generator=g)
        y_pred = torch.where(
            torch.rand(300, generator=g) < 0.5, y_true, torch.randint(classes - 1, (300,), generator=g)
        )
        y_true, y_pred = y_true.tolist(), y_pred.tolist()
        assert math.isclose(macro_f1(y_true, y_pred), f1_score(y_true, y_pred, average="macro", zero_division=0))
    values = torch.rand(400, generator=g).tolist()
    ours = bootstrap_ci(lambda idx: float(np.mean([values[i] for i in idx])), len(values), resamples=4000)
    ref = bootstrap((values,), np.mean, n_resamples=4000, method="percentile", random_state=0).confidence_interval
    assert abs(ours[0] - ref.low) < 0.004 and abs(ours[1] - ref.high) < 0.004
    for bad in (lambda: macro_f1([], []), lambda: macro_f1([0, 1], [0]), lambda: bootstrap_ci(len, 0)):
        with pytest.raises(ValueError):
            bad()
