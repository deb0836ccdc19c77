"""leximind.multitask end to end: multi-task training improves every task, a from-scratch model beats the majority
baseline on the real emotion test split, batches of mixed lengths, tasks as data, saving, DDP, the shared checkpoint of
chapters 13-15, and bad input. The metrics: test_leximind_evaluate.py; the app: test_leximind_app.py; the command
lines: test_cli.py."""

import math
import shutil
from pathlib import Path

import pytest
import torch

from conftest import torchrun
from leximind.app import LexiMind
from leximind.evaluate import classify
from leximind.model import T5, T5Config
from leximind.multitask import (
    TASKS,
    MultiTaskBatches,
    MultiTaskT5,
    Task,
    count_tokens,
    load_emotion,
    load_tasks,
    multitask_loss,
    task_metrics,
    task_probabilities,
    train_leximind,
)
from leximind.tokenizer import SentencePieceTokenizer, train_sentencepiece
from lightbrain.core import seed_everything
from lightbrain.train import TrainConfig, train

QUIET = dict(tracker="none", progress=False)


def test_training_improves_every_task(leximind_quick):
    tasks, tokenizer, data, model = leximind_quick
    before = task_metrics(model, data)
    train(
        model,
        data,
        multitask_loss,
        TrainConfig(batch_size=16, max_steps=300, lr=3e-3, min_lr=3e-4, warmup_steps=50, **QUIET),
        "cpu",
        count_tokens=count_tokens,
    )
    after = task_metrics(model, data)
    # on the real slices, 300 steps from scratch (measured: summary loss 28.2 -> 15.5, emotion 0.205 -> 0.370, topic
    # 0.175 -> 0.615)
    assert after["summarize_loss"] < 0.7 * before["summarize_loss"]
    assert (
        after["emotion_accuracy"] > before["emotion_accuracy"] + 0.1
        and after["topic_accuracy"] > before["topic_accuracy"] + 0.3
    )


def test_real_emotion_from_scratch_beats_majority():
    emotion = load_emotion("builtin")  # the course's slice: the real tweets
    seed_everything(0)
    tokenizer = SentencePieceTokenizer(
        train_sentencepiece([TASKS["emotion"].prefix + t for t in emotion["train"]["text"]], 2000)
    )
    model = MultiTaskT5(T5(T5Config.tiny(vocab_size=tokenizer.vocab_size, context_length=64)))
    data = MultiTaskBatches({"emotion": emotion}, tokenizer, 64)
    train(
        model,
        data,
        multitask_loss,
        TrainConfig(batch_size=32, max_steps=300, lr=3e-3, min_lr=3e-4, warmup_steps=50, **QUIET),
        "cpu",
        count_tokens=count_tokens,
    )
    labels = list(emotion["test"]["label"])
    majority = max(labels.count(k) for k in set(labels)) / len(labels)
    accuracy = (
        (classify(model, tokenizer, "emotion", list(emotion["test"]["text"])).argmax(-1) == torch.tensor(labels))
        .float()
        .mean()
        .item()
    )
    assert accuracy > majority + 0.1, (accuracy, majority)


def test_mixed_lengths_in_a_batch(leximind_quick):
    tasks, tokenizer, data, model = leximind_quick
    texts = [
        "i feel so relaxed",
        "Oil prices rise sharply Reuters - Oil prices rose sharply on Monday, officials said. " * 3,
        "x",
    ]
    together = classify(model, tokenizer, "topic", texts)
    alone = torch.cat([classify(model, tokenizer, "topic", [t]) for t in texts])
    assert torch.allclose(together, alone, atol=1e-5)
    app = LexiMind(model, tokenizer, "cpu", max_new_tokens=12)
    assert [r["summary"] for r in app.analyze(texts)] == [app.analyze(t)["summary"] for t in texts]


def test_task_probabilities():
    p = task_probabilities({"a": 100, "b": 25}, temperature=2.0)
    assert math.isclose(p["a"], 10 / 15) and math.isclose(p["b"], 5 / 15)
    assert task_probabilities({"a": 100, "b": 25}, 1.0)["a"] == 0.8
    assert task_probabilities({"a": 100, "b": 25}, 1.0, cap=25)["a"] == 0.5  # T5's K: "a" counts as 25 examples
    assert math.isclose(task_probabilities({"a": 400, "b": 25}, 2.0, cap=100)["a"], 10 / 15)  # cap, then temperature
    with pytest.raises(ValueError):
        task_probabilities({"a": 1}, 0)
    with pytest.raises(ValueError):
        task_probabilities({"a": 1}, 2.0, cap=0)


def test_tasks_are_data(leximind_quick):
    """Catches a task record that contradicts its data (columns, label names), an unknown data source accepted
    silently, and a batch source that ignores the batch size the training loop asks for."""
    tasks, tokenizer, data, model = leximind_quick
    for name, task in TASKS.items():
        train_split = tasks[name]["train"]
        assert {task.source, task.target} <= set(train_split.column_names)
        if task.kind == "classify":
            assert list(task.labels) == train_split.features[task.target].names == model.labels[name]
    with pytest.raises(ValueError, match="unknown data source"):
        load_tasks("quick", emotions="data/emotion")
    with pytest.raises(ValueError, match="kind"):
        Task("x", "classify", "x: ", "text", "label", (), "accuracy", "x", load_emotion)
    assert data("train", 5, torch.Generator().manual_seed(0))["input_ids"].shape[0] == 5


def test_save_load(leximind_quick, tmp_path):
    tasks, tokenizer, data, model = leximind_quick
    model.save(tmp_path)
    loaded = MultiTaskT5.load(tmp_path)
    batch = data.collate("emotion", [tokenizer.encode("emotion: i feel happy")], [1])
    model.eval()
    assert torch.equal(
        loaded.classify("emotion", batch["input_ids"], batch["attention_mask"]),
        model.classify("emotion", batch["input_ids"], batch["attention_mask"]),
    )


def test_ddp_trains_the_multitask_model(tmp_path):
    """Two processes (gloo): each step holds one task per rank, so some parameters get no gradient; training must
    run and the replicas stay equal."""
    worker = Path(__file__).parent / "ddp_multitask_worker.py"
    res = torchrun(worker, tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    init = torch.load(tmp_path / "init.pt", weights_only=True)
    assert all(torch.equal(ranks[0][k], ranks[1][k]) for k in ranks[0]), "the two replicas drifted apart"
    assert all(torch.isfinite(v).all() for v in ranks[0].values())
    assert not torch.equal(ranks[0]["t5.shared.weight"], init["t5.shared.weight"])  # it did train


def test_full_setup_needs_flan_t5(monkeypatch, tmp_path):
    """Catches full mode silently training a random stand-in when FLAN-T5 cannot be had: offline, with no copy in the
    hub's cache or in $LIGHTBRAIN_DATA, it stops with one line."""
    from leximind.multitask import full_setup

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LIGHTBRAIN_DATA", str(tmp_path))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError, match="no such model in the hub's cache"):
        full_setup("google/flan-t5-base")


def test_batches_cut_inputs_as_they_read(leximind_quick):
    """Catches keeping every article's whole token list (several GB for CNN/DailyMail) or cutting without the
    end-of-sequence id."""
    tasks, tokenizer, data, model = leximind_quick  # max_source 256, max_target 48
    sources, targets = data.examples["summarize", "train"]
    whole = tokenizer.encode(TASKS["summarize"].prefix + tasks["summarize"]["train"][0]["article"])
    assert (
        len(whole) > 256 and sources[0].tolist() == whole[:255] + [tokenizer.eos_id] and sources[0].dtype == torch.int32
    )
    assert max(map(len, sources)) == 256 and max(map(len, targets)) == 48
    batch = data.collate("summarize", [[5, 6, 7], [8]], [[9], [10, 11]])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, tokenizer.pad_id, tokenizer.pad_id]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]] and batch["labels"].tolist() == [
        [9, -100],
        [10, 11],
    ]


def test_trained_checkpoint_reuses_chapter_13s_model(tmp_path, monkeypatch):
    """Catches chapters 14-15 retraining a model chapter 13 saved, not training one that is missing, copying instead
    of linking, or ignoring $LIGHTBRAIN_RUNS (where Colab keeps chapter 13's run, on Google Drive)."""
    import leximind.multitask as mt

    monkeypatch.setenv("LIGHTBRAIN_RUNS", str(tmp_path / "drive" / "runs"))
    calls = []

    def fake_train(out, mode, *args):  # stands in for two minutes of training: writes what train_leximind writes last
        calls.append(mode)
        best = Path(out) / "best"
        best.mkdir(parents=True)
        (best / "model.safetensors").write_bytes(b"weights")
        (best / "run.json").write_text("{}")

    monkeypatch.setattr(mt, "train_leximind", fake_train)
    first = mt.trained_checkpoint(tmp_path / "ch14" / "best", "quick")
    assert calls == ["quick"] and (first / "run.json").is_file()
    second = mt.trained_checkpoint(tmp_path / "ch15" / "best", "quick")
    assert calls == ["quick"]  # found, not retrained
    saved = tmp_path / "drive" / "runs" / "leximind-quick" / "best" / "model.safetensors"
    assert (second / "model.safetensors").stat().st_ino == saved.stat().st_ino  # a hard link, not a copy


def test_a_fresh_runtime_takes_chapter_13s_model_from_the_hub(leximind_quick, tmp_path, monkeypatch):
    """Colab's next notebook: no run in runs/, the model pushed by chapter 13 on the hub (here its offline cache, in
    the hub's own layout). Catches retraining it, and a push that leaves out the tokenizer or run.json."""
    import huggingface_hub

    import leximind.multitask as mt
    from lightbrain.model import push_checkpoint

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LIGHTBRAIN_RUNS", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = tmp_path / "cache"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))

    def upload_folder(self, repo_id, folder_path, **kw):  # the hub, played by its cache layout on this machine
        snapshot = cache / f"models--{repo_id.replace('/', '--')}" / "snapshots" / ("0" * 40)
        shutil.copytree(folder_path, snapshot)
        (snapshot.parent.parent / "refs").mkdir()
        (snapshot.parent.parent / "refs" / "main").write_text("0" * 40)

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, repo_id, **kw: f"https://hf.co/{repo_id}")
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    tokenizer, config = leximind_quick[1], leximind_quick[3].t5.config
    folder = tmp_path / "elsewhere" / "best"
    MultiTaskT5(T5(config), summary_length=40).save(folder)
    mt.run_files(tokenizer, "quick", {}, mt.PRESETS[mt.TrainConfig]["quick"])(folder)
    assert push_checkpoint(folder, "someone/leximind") == "https://hf.co/someone/leximind"
    monkeypatch.setattr(mt, "train_leximind", lambda *a, **k: pytest.fail("trained although the hub has the model"))
    got = mt.trained_checkpoint(tmp_path / "ch14" / "best", "quick", hub="someone/leximind")
    assert sorted(p.name for p in got.iterdir()) == ["config.json", "model.safetensors", "run.json", "spiece.model"]
    assert MultiTaskT5.load("someone/leximind").summary_length == 40
    with pytest.raises(FileNotFoundError, match="no such model in the hub's cache"):
        mt.trained_checkpoint(tmp_path / "ch15" / "best", "quick", hub="someone/other")


def test_run_options_are_checked_before_any_work(tmp_path):
    """Catches a bad pooling, temperature or length found only after the data and the model are loaded (minutes, in
    full mode), or a run folder left behind by a run that could not start."""
    for bad in ({"pooling": "max"}, {"temperature": 0}, {"max_target": 1}):
        with pytest.raises(ValueError):
            train_leximind(tmp_path / "run", "quick", **bad)
    assert not (tmp_path / "run").exists()
