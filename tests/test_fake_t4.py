"""tools/fake_t4.py, the T4 the full-mode rehearsal plays on a CPU: what it must catch (a model and its inputs on two
devices, a large model left on the CPU, a cuda tensor given to NumPy), what it must not change (results, the CPU's
own tensors), and that it leaves PyTorch as it found it. Then what it makes testable on a CPU: chapter 06's loop on
the T4's path, fp16 autocast with loss scaling, skipping an overflowed step and stopping on a run that keeps
overflowing."""

import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
from fake_t4 import fake_t4  # noqa: E402

from lightbrain.core import dtype_policy, get_device  # noqa: E402
from lightbrain.model import GPT, GPTConfig  # noqa: E402
from lightbrain.train import MAX_OVERFLOWS, TrainConfig, train  # noqa: E402

SAME_DEVICE = "Expected all tensors to be on the same device"  # the start of PyTorch's own message


def test_it_answers_as_a_t4_and_leaves_pytorch_as_it_found_it():
    "Catches a fake that answers as a GPU with bf16 (no fp16 path to test), or one that outlives its `with` block."
    autocast, is_available = torch.autocast, torch.cuda.is_available
    with fake_t4():
        assert torch.cuda.is_available() and get_device() == torch.device("cuda")
        assert torch.cuda.get_device_name() == "Tesla T4" and torch.cuda.get_device_capability() == (7, 5)
        assert dtype_policy(get_device()).name == "fp16" and dtype_policy(get_device()).grad_scaling
        with pytest.raises(RuntimeError, match="bfloat16"):
            torch.autocast("cuda", dtype=torch.bfloat16)
    assert torch.autocast is autocast and torch.cuda.is_available is is_available and not torch.cuda.is_available()
    assert torch.zeros(2).device.type == "cpu" and not hasattr(torch.zeros(2), "_fake_t4_device")


def test_two_devices_meeting_fail_as_on_a_gpu():
    """Catches the bug class a CPU run cannot see: a model on the GPU fed CPU ids (and the reverse), `.to()` that
    moves the tensor it was called on instead of returning a copy, NumPy given a GPU tensor."""
    with fake_t4():
        model = GPT(GPTConfig.tiny()).to("cuda")
        ids = torch.randint(100, (2, 8))
        with pytest.raises(RuntimeError, match=SAME_DEVICE):
            model(ids)
        on_gpu = ids.to("cuda")
        assert on_gpu.device.type == "cuda" and ids.device.type == "cpu"  # the original stays where it was
        logits = model(on_gpu)[0]
        assert logits.is_cuda and next(model.parameters()).is_cuda
        with pytest.raises(TypeError, match="Use Tensor.cpu"):
            logits.numpy()
        assert logits.detach().cpu().numpy().shape == (2, 8, model.config.vocab_size)
        with pytest.raises(RuntimeError, match=SAME_DEVICE):
            GPT(GPTConfig.tiny())(on_gpu)  # a model left on the CPU, its inputs on the GPU
        assert (torch.ones(3, device="cuda") + torch.tensor(2.0)).is_cuda  # a CPU scalar mixes in, as in PyTorch


def test_generators_and_memory_answer_as_on_a_gpu():
    """Catches a sampler that draws on the GPU with a CPU generator (PyTorch refuses it there), and memory queries
    that do not follow what is held on the GPU (chapter 03 divides by them)."""
    with fake_t4():
        probs = torch.full((2, 10), 0.1, device="cuda")
        with pytest.raises(RuntimeError, match="Expected a 'cuda' device type for generator but found 'cpu'"):
            torch.multinomial(probs, 1, generator=torch.Generator().manual_seed(0))
        assert torch.multinomial(probs, 1, generator=torch.Generator("cuda").manual_seed(0)).is_cuda
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
        big = torch.empty(1024, 1024, device="cuda")  # 4 MiB
        assert torch.cuda.memory_allocated() - start == 4 * 2**20
        del big
        assert torch.cuda.memory_allocated() == start and torch.cuda.max_memory_allocated() - start == 4 * 2**20


def test_results_are_the_cpus_own():
    "Catches a fake that changes what is computed: the same model gives the same logits on its cuda and on the CPU."
    torch.manual_seed(0)
    model, ids = GPT(GPTConfig.tiny()).eval(), torch.randint(100, (2, 8))
    expected = model(ids)[0]
    with fake_t4():
        got = model.to("cuda")(ids.cuda())[0].cpu()
    assert torch.equal(got, expected)


def test_a_large_model_left_on_the_cpu_is_refused():
    "Catches the silent case: the model and its inputs both on the CPU while the GPU idles (chapter 14's bug)."
    model = GPT(GPTConfig.tiny(vocab_size=50_000, d_model=256, context_length=512)).eval()  # 13M parameters
    ids = torch.randint(100, (8, 512))
    with fake_t4(), torch.no_grad():
        with pytest.raises(RuntimeError, match="on the CPU while a GPU is available"):
            model(ids)
        model(ids[:1, :8])  # a small forward pass (a parity check's) may run on the CPU
        model.to("cuda")(ids.cuda())


def _batches(split, batch_size, generator):
    x = torch.randint(0, 100, (batch_size, 17), generator=generator)
    return x[:, :-1].to("cuda"), x[:, 1:].to("cuda")


def _run(loss_fn, steps=6):
    torch.manual_seed(0)
    model = GPT(GPTConfig.tiny(vocab_size=100))
    config = TrainConfig(max_steps=steps, batch_size=4, warmup_steps=1, eval_interval=steps, eval_iters=1)
    rows = train(model, _batches, loss_fn, TrainConfig(**{**config.__dict__, "progress": False, "log_interval": 1}))
    return model, rows


def test_fp16_training_takes_the_t4_path():
    "Catches a loop that never autocasts to fp16 or never scales the loss on a T4 (the policy of chapter 00)."
    seen = []

    def loss_fn(model, batch):
        logits, loss = model(batch[0], labels=batch[1])
        seen.append(logits.dtype)
        return loss

    with fake_t4():
        model, rows = _run(loss_fn)
        assert seen[0] == torch.float16 and next(model.parameters()).is_cuda
    assert len(rows) == 6 and all(math.isfinite(r["loss"]) for r in rows)


def test_an_fp16_overflow_is_skipped_and_one_that_stays_stops():
    """GradScaler's contract: a step whose fp16 loss overflowed is skipped (its gradients are not finite), the run goes
    on. Catches stopping the run at the first overflow, and never stopping one that keeps overflowing."""
    calls = []

    def once(model, batch):  # the loss of training step 3 overflows
        calls.append(1)
        loss = model(batch[0], labels=batch[1])[1]
        return loss * float("inf") if len(calls) == 3 else loss

    with fake_t4():
        model, rows = _run(once)
        assert [math.isfinite(r["loss"]) for r in rows] == [True, True, False, True, True, True]
        assert all(torch.isfinite(p).all() for p in model.parameters())  # the overflowed update was not applied
        always = lambda model, batch: model(batch[0], labels=batch[1])[1] * float("inf")
        with pytest.raises(
            FloatingPointError, match=f"the loss became inf at step {MAX_OVERFLOWS + 1}: training stopped"
        ):
            _run(always, steps=MAX_OVERFLOWS + 5)


def test_the_rehearsals_fp16_computes_in_bf16_and_is_put_back():
    """Catches the rehearsal's stand-in leaking: fp16_as must change only what a played fp16 autocast computes in,
    keep the T4's answers (fp16 policy, bf16 refused), and be undone on leaving."""
    x = torch.randn(4, 8)
    with fake_t4(fp16_as=torch.bfloat16):
        assert dtype_policy(get_device()).name == "fp16"
        with torch.autocast("cuda", dtype=torch.float16):
            assert (x.cuda() @ x.cuda().T).dtype == torch.bfloat16
    with fake_t4():
        with torch.autocast("cuda", dtype=torch.float16):
            assert (x.cuda() @ x.cuda().T).dtype == torch.float16
