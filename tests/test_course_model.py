"""The course models shipped in leximind/course_model and lightbrain/course_model: they load, the commands use them by
default, and they still score what their metrics.json recorded when tools/train_course_models.py made them."""

import json

import pytest

from leximind.app import LexiMind, analyze_command
from leximind.evaluate import checkpoint_report
from leximind.multitask import COURSE_MODEL
from lightbrain import cli
from lightbrain.data import prepare, pubmedqa_corpus, pubmedqa_text
from lightbrain.model import GPT
from lightbrain.tokenizer import load_tokenizer
from lightbrain.train import evaluate_lm


def recorded(folder) -> dict:
    "What the course model in `folder` scored when it was made ({} if none is shipped)."
    return json.loads((folder / "metrics.json").read_text()) if (folder / "metrics.json").is_file() else {}


RECORDED, LIGHTBRAIN_RECORDED = recorded(COURSE_MODEL), recorded(cli.COURSE_MODEL)
leximind_model = pytest.mark.skipif(not RECORDED, reason="no course model: tools/train_course_models.py leximind")
lightbrain_model = pytest.mark.skipif(
    not LIGHTBRAIN_RECORDED, reason="no course model: tools/train_course_models.py lightbrain"
)


@leximind_model
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


@leximind_model
def test_the_recorded_emotion_scores_beat_the_tfidf_baseline():
    "Catches a course model shipped without doing its job: emotion above TF-IDF + logistic regression, as claimed."
    tfidf = RECORDED["baselines"]["emotion"]["TF-IDF + logistic regression"]
    for metric in ("accuracy", "macro_f1"):
        assert RECORDED["test"]["emotion"][metric] > tfidf[metric], metric


@leximind_model
def test_the_leximind_command_answers_with_the_course_model_and_says_so(capsys):
    "Catches `leximind TEXT` needing --checkpoint again, or answering without saying which model answered."
    analyze_command(["--task", "emotion", "i feel so relaxed after work today"])
    out, err = capsys.readouterr()
    assert out.startswith("emotion: ") and "course model" in err
    assert LexiMind.load().analyze("what a lovely day")["notes"][0].startswith("answered by LexiMind's course model")


@lightbrain_model
def test_lightbrains_course_model_reproduces_its_recorded_held_out_loss(tmp_path):
    """Catches a change to the GPT (attention, norms, positions, tied embeddings), the BPE tokenizer, the token files
    or the loading of fp16 weights that silently breaks the shipped weights: the loss on the held-out PubMedQA
    documents, tokenized again from the course's data, must come back to within 0.0003 nats per token (the record is
    rounded to 0.0001; float differences between CPUs are smaller still)."""
    model, tokenizer = GPT.load(cli.COURSE_MODEL), load_tokenizer(cli.COURSE_MODEL)
    docs = pubmedqa_corpus("quick")
    for split in ("validation", "test"):  # prepare wants a train split: the held-out documents stand in
        prepare({"train": docs[split], "validation": docs[split]}, tokenizer, tmp_path / split, pubmedqa_text)
        loss, n = evaluate_lm(model, tmp_path / split, "val", progress=False)
        expected = LIGHTBRAIN_RECORDED["course model"][split]
        assert n == expected["tokens"] and loss == pytest.approx(expected["loss"], abs=0.0003), split


@lightbrain_model
def test_lightbrains_recorded_perplexity_beats_chapter_08s_model_and_the_unigram_baseline():
    """Catches a course model shipped without being better than what a learner trains in chapter 08: fewer bits per
    byte of held-out text than the 3-minute model and than the unigram baseline, on both held-out splits."""
    for split in ("validation", "test"):
        ours, quick = (LIGHTBRAIN_RECORDED[m][split] for m in ("course model", "chapter 08's quick model"))
        assert ours["bits_per_byte"] < quick["bits_per_byte"] < ours["unigram_bits_per_byte"], split


@lightbrain_model
def test_lightbrain_generate_writes_with_the_course_model_and_says_so(capsys):
    "Catches `lightbrain-generate` needing --checkpoint again, or writing without saying which model wrote."
    cli.generate_command(["--prompt", "Question: Does aspirin reduce", "--max-new-tokens", "12", "--seed", "0"])
    out, err = capsys.readouterr()
    assert out.strip() and "course model" in err and "never use it for medical decisions" in err
