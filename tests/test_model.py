"""lightbrain.model against Hugging Face's GPT2LMHeadModel (random weights, offline): logits, loss, initialisation,
local checkpoints; the parameter formula; saving and loading; the KV cache; bad input."""

import json
import math

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel
from transformers import logging as hf_logging

from lightbrain.model import GPT, GPTConfig, KVCache, param_count

hf_logging.set_verbosity_error()
TINY = dict(n_layer=2, n_head=4, n_embd=64, vocab_size=1000, n_positions=64, bos_token_id=0, eos_token_id=0)


def random_hf(**shape) -> GPT2LMHeadModel:
    "A GPT2LMHeadModel with every parameter random, norm gains and biases included (HF's init would hide swaps)."
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(**shape)).eval()
    with torch.no_grad():
        for name, p in hf.named_parameters():
            p.normal_(1.0 if ".ln_" in name and name.endswith(".weight") else 0.0, 0.02)
    return hf


@pytest.mark.parametrize("shape", [TINY, {}], ids=["tiny", "gpt2-124M"])
def test_parity_with_hf(shape):
    hf = random_hf(**shape)
    ours = GPT.from_hf(hf)
    ids = torch.randint(hf.config.vocab_size, (2, 40), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = hf(ids, labels=ids)
        logits, loss = ours(ids[:, :-1], labels=ids[:, 1:])
    assert (logits - ref.logits[:, :-1]).abs().max() <= 1e-4
    assert abs(loss.item() - ref.loss.item()) <= 1e-5


def test_parity_from_local_hf_folder(tmp_path):
    hf = random_hf(**TINY)
    hf.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    ours = GPT.from_hf(tmp_path)
    ids = torch.randint(1000, (1, 20))
    with torch.no_grad():
        assert (ours(ids)[0] - hf(ids).logits).abs().max() <= 1e-4
    with pytest.raises(FileNotFoundError):
        GPT.from_hf(tmp_path / "missing")


def test_unsupported_hf_variants_are_refused():
    with pytest.raises(ValueError, match="activation"):
        GPT.from_hf(GPT2LMHeadModel(GPT2Config(**TINY, activation_function="relu")))


def test_init_matches_gpt2():
    """GPT-2's init: std 0.02 as Hugging Face draws it; the residual projections 0.02 / sqrt(2 n_layers), as the
    GPT-2 paper
    states (transformers 5.0 to 5.12 dropped that scaling, so Hugging Face is not the reference for it); zero biases."""
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(**{**TINY, "n_embd": 256}))
    ours = GPT(GPTConfig(vocab_size=1000, context_length=64, n_layers=2, n_heads=4, d_model=256))
    pairs = [
        (ours.blocks[0].attn.qkv_proj.weight, hf.transformer.h[0].attn.c_attn.weight.std().item()),
        (ours.wte.weight, hf.transformer.wte.weight.std().item()),
        (ours.blocks[1].attn.out_proj.weight, 0.02 / math.sqrt(2 * 2)),
        (ours.blocks[0].mlp.proj.weight, 0.02 / math.sqrt(2 * 2)),
    ]
    for mine, std in pairs:
        assert abs(mine.std().item() / std - 1) < 0.05
    assert ours.blocks[0].mlp.fc.bias.abs().max() == 0


@pytest.mark.parametrize(
    "config",
    [
        GPTConfig.tiny(),
        GPTConfig.tiny(bias=False),
        GPTConfig.tiny(norm="rmsnorm"),
        GPTConfig.tiny(tie_embeddings=False),
        GPTConfig.lightbrain_tiny(),
        GPTConfig.gpt2(),
    ],
)
def test_param_formula_equals_count(config):
    assert param_count(config) == sum(p.numel() for p in GPT(config).parameters())


def test_lightbrain_tiny_is_30m():
    assert round(param_count(GPTConfig.lightbrain_tiny()) / 1e6, 1) == 30.0
    assert param_count(GPTConfig.gpt2()) == 124_439_808  # GPT-2's published "124M"


def test_cache_in_chunks_equals_full_forward():
    torch.manual_seed(0)
    model = GPT(GPTConfig.tiny()).eval()
    ids = torch.randint(1024, (2, 30))
    full = model(ids)[0]
    cache = KVCache()
    chunks = [model(ids[:, a:b], cache=cache)[0] for a, b in [(0, 11), (11, 12), (12, 30)]]
    assert len(cache) == 30 and (torch.cat(chunks, 1) - full).abs().max() <= 1e-5
    with pytest.raises(ValueError, match="exceed"):
        model(torch.zeros(1, 40, dtype=torch.long), cache=cache)
    small = KVCache(max_len=12)  # room for 12 positions: the 13th is refused, not silently reallocated
    model(ids[:, :12], cache=small)
    with pytest.raises(ValueError, match="holds 12 positions and 13 do not fit"):
        model(ids[:, 12:13], cache=small)


def test_attention_paths_agree():
    torch.manual_seed(0)
    fast = GPT(GPTConfig.tiny()).eval()
    slow = GPT(GPTConfig.tiny(use_sdpa=False)).eval()
    slow.load_state_dict(fast.state_dict())
    ids = torch.randint(1024, (2, 50))
    assert (fast(ids)[0] - slow(ids)[0]).abs().max() <= 1e-5


def test_loss_ignores_minus_100():
    torch.manual_seed(0)
    model = GPT(GPTConfig.tiny()).eval()
    ids, targets = torch.randint(1024, (1, 10)), torch.randint(1024, (1, 10))
    logits, _ = model(ids)
    masked = targets.clone()
    masked[0, 5:] = -100
    expected = torch.nn.functional.cross_entropy(logits[0, :5], targets[0, :5])
    assert torch.allclose(model(ids, labels=masked)[1], expected)


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = GPT(GPTConfig.tiny(norm="rmsnorm")).eval()
    model.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    loaded = GPT.load(tmp_path)
    assert loaded.config == model.config and loaded.lm_head.weight is loaded.wte.weight
    ids = torch.randint(1024, (1, 12))
    assert torch.equal(loaded(ids)[0], model(ids)[0])
    untied = GPT(GPTConfig.tiny(tie_embeddings=False))
    untied.save(tmp_path / "untied")
    assert torch.equal(GPT.load(tmp_path / "untied").lm_head.weight, untied.lm_head.weight)


def test_load_errors(tmp_path):
    GPT(GPTConfig.tiny()).save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "n_layers": 3}))
    with pytest.raises(ValueError, match="another config"):
        GPT.load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "d_model": 32}))
    with pytest.raises(ValueError, match="implies"):
        GPT.load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "n_layer": 2}))  # Hugging Face's GPT-2 name
    with pytest.raises(ValueError, match="unknown fields"):
        GPT.load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "model_type": "t5"}))
    with pytest.raises(ValueError, match="does not hold"):
        GPT.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="nothing: no such folder"):
        GPT.load(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        GPT.load(tmp_path / "empty")


def test_bad_input():
    model = GPT(GPTConfig.tiny())
    with pytest.raises(ValueError, match="exceed the model's context"):
        model(torch.zeros(1, 65, dtype=torch.long))
    with pytest.raises(ValueError, match="int64"):
        model(torch.zeros(1, 5))
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(d_model=100, n_heads=3)
    with pytest.raises(ValueError, match="norm must be"):
        GPTConfig(norm="batchnorm")
