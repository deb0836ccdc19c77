"""lightbrain.train: exact resume, the schedule and decay groups against their definitions, accumulation, DDP against
one process, fp16 on CUDA, a real-data smoke run against a unigram baseline, and every bad input (the command lines:
test_cli.py)."""

import csv
import json
import math
from collections import Counter

import numpy as np
import pytest
import torch

from conftest import ROOT, shared, torchrun
from lightbrain.data import load_pubmedqa, load_tokens, prepare, pubmedqa_text
from lightbrain.model import GPT, GPTConfig
from lightbrain.tokenizer import train_bpe
from lightbrain.train import (
    TrainConfig,
    adamw_step,
    check_lm_setup,
    cross_entropy,
    evaluate,
    evaluate_lm,
    lm_batches,
    lm_loss,
    lr_at,
    param_groups,
    precision,
    step_seed,
    train,
)

QUIET = dict(tracker="none", progress=False)


def tiny(dropout=0.1, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig.tiny(vocab_size=300, context_length=32, dropout=dropout))


def run(data_dir, steps, ckpt=None, resume=False, **kw):
    cfg = TrainConfig.tiny(
        batch_size=4,
        max_steps=steps,
        eval_interval=10,
        log_interval=1,
        ckpt_dir=str(ckpt) if ckpt else None,
        **QUIET,
        **kw,
    )
    torch.manual_seed(999)  # whatever the global state before a run, the run must not depend on it
    return train(tiny(), lm_batches(data_dir, 32, "cpu"), lm_loss, cfg, device="cpu", resume=resume)


def test_resume_is_exact(data_dir, tmp_path):
    straight = [r["loss"] for r in run(data_dir, 30, tmp_path / "a")]
    first = [r["loss"] for r in run(data_dir, 10, tmp_path / "b")]
    rest = [r["loss"] for r in run(data_dir, 30, tmp_path / "b", resume=True)]
    assert first + rest == straight  # bit for bit, dropout included
    assert (tmp_path / "b" / "last" / "trainer.pt").exists() and (
        tmp_path / "b" / "best" / "model.safetensors"
    ).exists()


def test_schedule_at_key_steps():
    c = TrainConfig(lr=1.0, min_lr=0.1, warmup_steps=10, max_steps=110)
    expected = {
        0: 0.1,
        4: 0.5,
        9: 1.0,
        10: 1.0,
        60: 0.1 + 0.9 * 0.5,
        110: 0.1,
        500: 0.1,
        35: 0.1 + 0.45 * (1 + math.cos(math.pi * 0.25)),
    }
    for step, lr in expected.items():
        assert math.isclose(lr_at(step, c), lr, rel_tol=1e-12), step
    assert math.isclose(
        lr_at(60, TrainConfig(lr=1.0, min_lr=0.0, warmup_steps=10, max_steps=1000, decay_steps=110)), 0.5
    )


def test_decay_groups():
    model = GPT(GPTConfig.tiny())
    decay, no_decay = param_groups(model, 0.1)
    named = dict(model.named_parameters())
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert {id(p) for p in decay["params"] + no_decay["params"]} == {id(p) for p in named.values()}
    assert any(p is model.wte.weight for p in decay["params"]) and not any(
        p is model.ln_f.weight for p in decay["params"]
    )
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (0.1, 0.0)


def test_accumulation_equals_one_big_batch(data_dir):
    "Two micro-batches of 4 are the same update as one batch of 8 (the generator draws the same windows in order)."
    results = []
    for batch_size, accum in [(8, 1), (4, 2)]:
        model = tiny(dropout=0.0)
        cfg = TrainConfig.tiny(batch_size=batch_size, grad_accum=accum, max_steps=3, warmup_steps=1, **QUIET)
        rows = train(model, lm_batches(data_dir, 32, "cpu"), lm_loss, cfg, device="cpu")
        results.append((rows[-1]["loss"], model.wte.weight.detach().clone()))
    assert math.isclose(results[0][0], results[1][0], rel_tol=1e-5) and torch.allclose(
        results[0][1], results[1][1], atol=1e-6
    )


def test_ddp_matches_one_process(data_dir, tmp_path):
    out = tmp_path / "ddp.json"
    res = torchrun(ROOT / "tests" / "ddp_worker.py", out, data_dir, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    ddp = json.loads(out.read_text())
    # One process on the same global batch: rank 0's and rank 1's micro-batches together, for every micro-step.
    base, seed, twins = lm_batches(data_dir, 32, "cpu"), 0, {}

    def both_ranks(split, batch_size, generator):
        if split != "train":
            return base(split, batch_size, generator)
        key = (
            generator.initial_seed()
        )  # step_seed(seed, 0, step): recover the step, make rank 1's generator for it once
        if key not in twins:
            twins[key] = torch.Generator().manual_seed(step_seed(seed, 1, key - step_seed(seed, 0, 0)))
        (x0, y0), (x1, y1) = base(split, batch_size // 2, generator), base(split, batch_size // 2, twins[key])
        return torch.cat([x0, x1]), torch.cat([y0, y1])

    torch.manual_seed(0)
    model = GPT(GPTConfig.tiny(vocab_size=300, context_length=32))
    cfg = TrainConfig.tiny(
        batch_size=8,
        grad_accum=2,
        max_steps=6,
        warmup_steps=2,
        eval_interval=100,
        log_interval=1,
        **QUIET,
    )
    single = [r["loss"] for r in train(model, both_ranks, lm_loss, cfg, device="cpu")]
    assert np.allclose(ddp, single, rtol=1e-5, atol=1e-6), (ddp, single)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the fp16 + GradScaler path needs a CUDA GPU")
def test_fp16_gradscaler_on_cuda(data_dir):
    policy = precision("fp16", torch.device("cuda"))
    assert policy.grad_scaling
    model = tiny(dropout=0.0)
    cfg = TrainConfig.tiny(batch_size=8, max_steps=50, dtype="fp16", eval_interval=50, **QUIET)
    rows = train(model, lm_batches(data_dir, 32, "cuda"), lm_loss, cfg, device="cuda")
    assert rows[-1]["val_loss"] < math.log(300) and all(math.isfinite(r["loss"]) for r in rows)


def test_fp16_refused_on_cpu():
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        precision("fp16", torch.device("cpu"))


def test_real_pubmedqa_beats_a_unigram_model(tmp_path):
    """Quick config, 200 steps on the PubMedQA mirror: validation loss below the entropy of a unigram model of the
    same tokens."""
    docs = load_pubmedqa(str(shared("pubmedqa", "ori_pqal.json")))
    tok = train_bpe([pubmedqa_text(ex) for ex in docs["train"]], 1024, ["<|endoftext|>"])
    prepare(docs, tok, tmp_path, pubmedqa_text)
    train_tokens, val_tokens = np.asarray(load_tokens(tmp_path, "train")), np.asarray(load_tokens(tmp_path, "val"))
    counts = Counter(train_tokens.tolist())
    p = {t: (counts[t] + 1) / (len(train_tokens) + tok.n_vocab) for t in range(tok.n_vocab)}  # add-one smoothing
    unigram = -np.mean([math.log(p[t]) for t in val_tokens.tolist()])
    torch.manual_seed(0)
    model = GPT(GPTConfig.tiny(vocab_size=tok.n_vocab, context_length=128))
    rows = train(
        model, lm_batches(tmp_path, 128, "cpu"), lm_loss, TrainConfig.tiny(max_steps=200, **QUIET), device="cpu"
    )
    assert rows[-1]["val_loss"] < unigram, (rows[-1]["val_loss"], unigram)


def test_nan_stops_and_keeps_the_last_checkpoint(data_dir, tmp_path):
    run(data_dir, 10, tmp_path)
    saved = (tmp_path / "last" / "model.safetensors").read_bytes()

    def bad(model, batch):
        return lm_loss(model, batch) * float("nan")

    cfg = TrainConfig.tiny(batch_size=4, max_steps=20, ckpt_dir=str(tmp_path), **QUIET)
    with pytest.raises(FloatingPointError, match="at step 11.*last good checkpoint"):
        train(tiny(), lm_batches(data_dir, 32, "cpu"), bad, cfg, device="cpu", resume=True)
    assert (tmp_path / "last" / "model.safetensors").read_bytes() == saved


def test_bad_setups_fail_before_any_step(data_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="lightbrain-prepare"):
        check_lm_setup(GPTConfig.tiny(), tmp_path / "none")
    with pytest.raises(ValueError, match="vocabulary"):
        check_lm_setup(GPTConfig.tiny(vocab_size=100, context_length=32), data_dir)
    with pytest.raises(ValueError, match="too few for windows"):
        check_lm_setup(GPTConfig.tiny(vocab_size=300, context_length=10**7), data_dir)
    run(data_dir, 10, tmp_path / "ckpt")
    other = GPT(GPTConfig.tiny(vocab_size=300, context_length=32, d_model=32))
    cfg = TrainConfig.tiny(batch_size=4, max_steps=20, ckpt_dir=str(tmp_path / "ckpt"), **QUIET)
    with pytest.raises(ValueError, match="implies"):
        train(other, lm_batches(data_dir, 32, "cpu"), lm_loss, cfg, device="cpu", resume=True)
    assert not (tmp_path / "ckpt" / "log.csv").read_text().count("\n11,")  # no step 11 was logged
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(
            tiny(),
            lm_batches(data_dir, 32, "cpu"),
            lm_loss,
            TrainConfig.tiny(ckpt_dir=str(tmp_path / "empty"), **QUIET),
            device="cpu",
            resume=True,
        )
    with pytest.raises(ValueError, match="dtype"):
        TrainConfig(dtype="fp8")


def test_evaluate_is_repeatable_and_leaves_training_mode(data_dir):
    model = tiny()
    model.train()
    batches = lm_batches(data_dir, 32, "cpu")
    assert evaluate(model, batches, lm_loss, 3, 4, seed=5) == evaluate(model, batches, lm_loss, 3, 4, seed=5)
    assert model.training


def test_no_setting_in_the_environment_changes_how_long_training_runs(data_dir, monkeypatch):
    """Catches the library reading a rehearsal setting again (issue 30): the old LIGHTBRAIN_REHEARSAL_STEPS must cap
    nothing; evaluate_lm's max_batches is the one way to score fewer batches."""
    monkeypatch.setenv("LIGHTBRAIN_REHEARSAL_STEPS", "3")
    assert run(data_dir, 5)[-1]["step"] == 5
    assert evaluate_lm(tiny(), data_dir, max_batches=3)[1] == 3 * 16 * 32  # three batches of 16 windows of 32 tokens
    assert evaluate_lm(tiny(), data_dir)[1] > 3 * 16 * 32


@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_cross_entropy_by_hand_matches_pytorch(scale):
    # Catches: no log-sum-exp shift (inf/nan at scale 1e4), padding counted in the mean, the wrong sign or axis.
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, 40, generator=g) * scale
    targets = torch.randint(40, (3, 7), generator=g)
    targets[1, 2:] = -100
    ref = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
    torch.testing.assert_close(cross_entropy(logits, targets), ref)
    bf16 = logits.bfloat16()  # a half-precision input is computed in float32, as autocast does
    torch.testing.assert_close(
        cross_entropy(bf16, targets), torch.nn.functional.cross_entropy(bf16.float().flatten(0, 1), targets.flatten())
    )


@pytest.mark.parametrize("betas,weight_decay", [((0.9, 0.999), 0.0), ((0.8, 0.95), 0.1)])
def test_adamw_step_by_hand_matches_torch(betas, weight_decay):
    # Catches: no bias correction (differs from step 1), L2 added to the gradient instead of decoupled decay, eps
    # inside the square root, betas swapped.
    g = torch.Generator().manual_seed(0)
    ours = torch.randn(4, 6, generator=g)
    ref = torch.nn.Parameter(ours.clone())
    opt = torch.optim.AdamW([ref], lr=0.05, betas=betas, eps=1e-6, weight_decay=weight_decay)
    m, v = torch.zeros_like(ours), torch.zeros_like(ours)
    for step in range(1, 11):
        grad = torch.randn(4, 6, generator=g) * 10 ** (step % 3 - 1)
        adamw_step(ours, grad, m, v, step, lr=0.05, betas=betas, eps=1e-6, weight_decay=weight_decay)
        ref.grad = grad.clone()
        opt.step()
        torch.testing.assert_close(ours, ref.detach())
    with pytest.raises(ValueError, match="step counts from 1"):
        adamw_step(ours, grad, m, v, 0, lr=0.05)


def test_a_run_with_the_mlflow_tracker_is_a_real_mlflow_run(data_dir, tmp_path, monkeypatch):
    """Catches metrics, parameters, the config or the final checkpoint missing from the MLflow run, a step logged
    twice or out of order, and a run left open (status RUNNING). Read back with MLflow's own client from its local
    file store, offline."""
    mlflow = pytest.importorskip("mlflow")
    from lightbrain.cli import train_command

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for it to read its local file store
    out = tmp_path / "run"
    run = ["--quick", "--data", str(data_dir), "--out", str(out), "--context-length", "16", "--n-layers", "1"]
    run += ["--eval-iters", "1", "--progress", "false"]
    train_command([*run, "--tracker", "mlflow", "--max-steps", "6", "--eval-interval", "3", "--log-interval", "1"])
    client = mlflow.tracking.MlflowClient((out / "mlruns").as_uri())
    [experiment] = [e for e in client.search_experiments() if e.name == "run"]
    [found] = client.search_runs([experiment.experiment_id])
    assert found.info.status == "FINISHED"
    assert found.data.params["max_steps"] == "6" and found.data.params["model.n_layers"] == "1"
    with open(out / "log.csv") as f:
        logged = list(csv.DictReader(f))
    losses = client.get_metric_history(found.info.run_id, "loss")
    assert [m.step for m in losses] == [int(r["step"]) for r in logged] == list(range(1, 7))
    assert [m.value for m in losses] == pytest.approx([float(r["loss"]) for r in logged])
    assert [m.step for m in client.get_metric_history(found.info.run_id, "val_loss")] == [3, 6]
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert artifacts == {"config.json", "checkpoint"}
    saved = {a.path for a in client.list_artifacts(found.info.run_id, "checkpoint")}
    assert {"checkpoint/config.json", "checkpoint/model.safetensors", "checkpoint/tokenizer.json"} <= saved


def test_the_tracker_is_a_checked_choice(tmp_path):
    "Catches a typo in tracker running without any tracker (the choices are TRACKERS' names)."
    with pytest.raises(ValueError, match="tracker must be one of none, tensorboard, mlflow"):
        TrainConfig(tracker="wandb")
