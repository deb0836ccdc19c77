"""Saving and loading (lightbrain.model) and a training run's checkpoints (lightbrain.train): any of the course's
models (and a plain nn.Module) saved and loaded, checked against safetensors' own reader and the state dict; unknown
config fields refused for every model; training state for any model."""

import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from leximind.model import T5, T5Config
from leximind.multitask import MultiTaskT5
from lightbrain.model import GPT, GPTConfig, load_weights, read_config, save_model
from lightbrain.train import load_checkpoint, save_checkpoint


def models():
    torch.manual_seed(0)
    t5 = T5(T5Config.tiny(vocab_size=64))
    return {
        "gpt": GPT(GPTConfig.tiny(vocab_size=64)),
        "t5": t5,
        "multitask": MultiTaskT5(T5(T5Config.tiny(vocab_size=64))),
    }


@pytest.mark.parametrize("name", ["gpt", "t5", "multitask"])
def test_every_model_round_trips_and_refuses_unknown_fields(name, tmp_path):
    """Catches a model that saves a tied tensor twice, loads other weights, or accepts a config.json with a field it
    lacks."""
    model = models()[name]
    model.save(tmp_path)
    stored = load_file(tmp_path / "model.safetensors")  # safetensors' own reader
    state = model.state_dict()
    assert all(torch.equal(stored[k], state[k]) for k in stored)
    loaded = type(model).load(tmp_path)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in state.items()) and not loaded.training
    assert not [
        p.name for p in tmp_path.iterdir() if p.suffix == ".tmp" or p.name.startswith(".")
    ]  # nothing half-written left
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "typo_field": 1}))
    with pytest.raises(ValueError, match=r"unknown fields \['typo_field'\]"):
        type(model).load(tmp_path)
    if name == "multitask":  # the T5 inside is checked too
        (tmp_path / "config.json").write_text(json.dumps({**config, "t5": {**config["t5"], "dmodel": 8}}))
        with pytest.raises(ValueError, match=r"unknown fields \['dmodel'\]"):
            type(model).load(tmp_path)


def test_any_module_saves_without_save_pretrained(tmp_path):
    "Catches the checkpoint code needing a model class of the course: a plain nn.Module is saved under its class name."
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    save_model(net, tmp_path)
    assert read_config(tmp_path, "Sequential") == {}
    copy = load_weights(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), tmp_path)
    x = torch.randn(5, 3)
    assert torch.equal(copy(x), net(x))
    with pytest.raises(ValueError, match="does not hold a lightbrain-gpt model"):
        read_config(tmp_path, "lightbrain-gpt")


def test_training_state_round_trips_for_a_plain_module(tmp_path):
    "Catches a resume that restores the weights but not the optimizer's moments, the step or the best loss."
    torch.manual_seed(0)
    net = nn.Linear(3, 2)
    optimizer, scaler = torch.optim.AdamW(net.parameters(), lr=0.1), torch.amp.GradScaler("cpu", enabled=False)
    net(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    save_checkpoint(tmp_path / "last", net, optimizer, scaler, step=7, best=1.5)
    fresh = nn.Linear(3, 2)
    fresh_optimizer = torch.optim.AdamW(fresh.parameters(), lr=0.1)
    assert load_checkpoint(tmp_path / "last", fresh, fresh_optimizer, scaler) == (7, 1.5)
    assert torch.equal(fresh.weight, net.weight)
    moments = lambda opt: [s["exp_avg"] for s in opt.state.values()]
    assert all(torch.equal(a, b) for a, b in zip(moments(fresh_optimizer), moments(optimizer)))


@pytest.mark.parametrize("killed", ["while writing", "between the renames", "before removing the old folder"])
def test_a_save_killed_at_any_point_leaves_a_state_that_loads_and_saves(killed, tmp_path):
    """Catches a checkpoint folder that a killed save leaves unusable: e.g. a stale `last.old` that made every later
    save fail with 'Directory not empty' (issue 17)."""
    net, scaler = nn.Linear(3, 2), torch.amp.GradScaler("cpu", enabled=False)
    optimizer = torch.optim.AdamW(net.parameters(), lr=0.1)
    last = tmp_path / "last"
    save_checkpoint(last, net, optimizer, scaler, step=1, best=2.0)
    save_checkpoint(tmp_path / "step2", net, optimizer, scaler, step=2, best=1.0)
    old, tmp = tmp_path / "last.old", tmp_path / "last.tmp"
    if killed == "while writing":  # a half-written temporary folder beside the intact checkpoint
        tmp.mkdir()
        (tmp / "model.safetensors").write_bytes(b"half")
        expected = 1
    elif killed == "between the renames":  # the old checkpoint moved aside, the new one not yet in place
        last.rename(old)
        (tmp_path / "step2").rename(tmp)
        expected = 1
    else:  # the new checkpoint in place, the old one not yet removed
        last.rename(old)
        (tmp_path / "step2").rename(last)
        expected = 2
    assert load_checkpoint(last, nn.Linear(3, 2), torch.optim.AdamW(net.parameters()), scaler)[0] == expected
    save_checkpoint(last, net, optimizer, scaler, step=3, best=0.5)
    assert load_checkpoint(last, nn.Linear(3, 2), torch.optim.AdamW(net.parameters()), scaler)[0] == 3
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("last")) == ["last"]
