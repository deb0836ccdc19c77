"""The course model shipped in leximind/course_model: it loads, the commands use it by default, and it still scores
what its metrics.json recorded when tools/train_course_models.py made it."""

import json

import pytest

from leximind.app import COURSE_MODEL, LexiMind, analyze_command
from leximind.evaluate import checkpoint_report

pytestmark = pytest.mark.skipif(
    not (COURSE_MODEL / "model.safetensors").is_file(), reason="no course model: python tools/train_course_models.py"
)
RECORDED = json.loads((COURSE_MODEL / "metrics.json").read_text()) if COURSE_MODEL.is_dir() else {}


def test_the_course_model_reproduces_its_recorded_test_scores():
    """Catches a change to the model code (the T5, its attention or norms, the heads, pooling, the tokenizer, the
    loading of fp16 weights) that silently breaks the shipped weights: every recorded test score must come back, to
    within a prediction or two (2 in 2,000 tweets; 0.5 ROUGE points) for float differences between CPUs."""
    report = checkpoint_report(COURSE_MODEL)
    for task in ("emotion", "topic"):
        for metric in ("accuracy", "macro_f1"):
            assert report[task][metric] == pytest.approx(RECORDED["test"][task][metric], abs=0.0015), (task, metric)
    for metric in ("rouge1", "rouge2", "rougeL"):
        assert report["summarize"][metric] == pytest.approx(RECORDED["test"]["summarize"][metric], abs=0.5), metric


def test_the_recorded_emotion_scores_beat_the_tfidf_baseline():
    "Catches a course model shipped without doing its job: emotion above TF-IDF + logistic regression, as claimed."
    tfidf = RECORDED["baselines"]["emotion"]["TF-IDF + logistic regression"]
    for metric in ("accuracy", "macro_f1"):
        assert RECORDED["test"]["emotion"][metric] > tfidf[metric], metric


def test_the_leximind_command_answers_with_the_course_model_and_says_so(capsys):
    "Catches `leximind TEXT` needing --checkpoint again, or answering without saying which model answered."
    analyze_command(["--task", "emotion", "i feel so relaxed after work today"])
    out, err = capsys.readouterr()
    assert out.startswith("emotion: ") and "course model" in err
    assert LexiMind.load().analyze("what a lovely day")["notes"][0].startswith("answered by LexiMind's course model")
