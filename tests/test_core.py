"Device, precision policy, seeding and mode: the rules chapter 00 states."

import os
import socketserver
import threading

import pytest
import torch

from lightbrain.core import (
    DtypePolicy,
    check_mode,
    dtype_policy,
    get_device,
    get_mode,
    hub_online,
    seed_everything,
    write_atomic,
)


@pytest.mark.parametrize("device", ["cpu", "mps", torch.device("cpu")])
def test_fp32_off_cuda(device):
    p = dtype_policy(device)
    assert (p.dtype, p.grad_scaling, p.name) == (None, False, "fp32")


@pytest.mark.parametrize(
    "capability, dtype, scaling",
    [
        ((7, 5), torch.float16, True),  # T4
        ((7, 0), torch.float16, True),  # V100
        ((8, 0), torch.bfloat16, False),  # A100
        ((9, 0), torch.bfloat16, False),
    ],
)  # H100
def test_cuda_rule(capability, dtype, scaling):
    assert dtype_policy("cuda", capability) == DtypePolicy("cuda", dtype, scaling)


def test_simulated_t4(monkeypatch):
    "With no capability given, the policy asks the GPU: a simulated T4 (no bf16) gets fp16 with loss scaling."
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    p = dtype_policy("cuda")
    assert (p.name, p.grad_scaling) == ("fp16", True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 9))
    assert dtype_policy("cuda").name == "bf16"


def test_cpu_autocast_and_scaler_are_no_ops():
    a = torch.randn(3, 3)
    policy = dtype_policy("cpu")
    with policy.autocast():
        assert (a @ a).dtype == torch.float32
    loss = torch.tensor(2.5)
    assert policy.grad_scaler().scale(loss) is loss


def test_bf16_autocast_changes_matmul_dtype():
    with DtypePolicy("cpu", torch.bfloat16).autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16


def test_mode(monkeypatch):
    monkeypatch.delenv("LIGHTBRAIN_MODE", raising=False)
    for cuda, mode in ((True, "full"), (False, "quick")):  # unset: full exactly when a CUDA GPU is there
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        assert get_mode() == mode
    for mode in ("quick", "full", " FULL "):
        monkeypatch.setenv("LIGHTBRAIN_MODE", mode)
        assert get_mode() == mode.strip().lower()
    monkeypatch.setenv("LIGHTBRAIN_MODE", "turbo")
    with pytest.raises(ValueError, match="not a mode"):
        get_mode()


def test_a_mode_argument_must_be_quick_or_full():
    "Catches a typo passing as a mode: `mode == 'quick'` alone would run 'Quick' or True as full mode."
    from leximind.multitask import load_tasks
    from lightbrain.data import pubmedqa_corpus

    assert [check_mode(m) for m in ("quick", "full")] == ["quick", "full"]
    for bad in ("Quick", "fast", True):
        for call in (check_mode, pubmedqa_corpus, load_tasks):
            with pytest.raises(ValueError, match="must be 'quick' or 'full'"):
                call(bad)


def test_device(monkeypatch):
    monkeypatch.setenv("LIGHTBRAIN_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    monkeypatch.setenv("LIGHTBRAIN_DEVICE", "gpu")
    with pytest.raises(ValueError, match="not a device"):
        get_device()
    monkeypatch.delenv("LIGHTBRAIN_DEVICE")
    for cuda, mps, device in (
        (True, True, "cuda"),
        (False, True, "mps"),
        (False, False, "cpu"),
    ):  # unset: the best one there
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
        assert get_device() == torch.device(device)


def test_seed_repeats_all_generators():
    import random

    import numpy as np

    def draw():
        return random.random(), float(np.random.rand()), torch.randn(5)

    seed_everything(123)
    a = draw()
    seed_everything(123)
    b = draw()
    seed_everything(124)
    c = draw()
    assert a[:2] == b[:2] and torch.equal(a[2], b[2])
    assert a[:2] != c[:2] and not torch.equal(a[2], c[2])


def test_hub_offline_switch(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub_online() is False


def test_hub_unreachable(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr("lightbrain.core.HUB_HOST", "hub.invalid")  # .invalid never resolves (RFC 2606)
    assert hub_online(timeout=1) is False


@pytest.mark.parametrize(
    "answer, online", [(b"HTTP/1.1 200 Connection established", True), (b"HTTP/1.1 403 No", False)]
)
def test_hub_online_asks_the_proxy_the_environment_names(monkeypatch, answer, online):
    """Catches a check that ignores HTTPS_PROXY (behind a proxy, full mode would fall back to the course's slices) or
    NO_PROXY, or that calls a refused tunnel online. A local server plays the proxy and records what it was asked."""
    asked = []

    class Proxy(socketserver.BaseRequestHandler):
        def handle(self):
            asked.append(self.request.recv(1024).split(b"\r\n")[0])
            self.request.sendall(answer + b"\r\n\r\n")

    with socketserver.TCPServer(("127.0.0.1", 0), Proxy) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        for name in ("https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{server.server_address[1]}")
        assert hub_online(timeout=2) is online
        assert asked == [b"CONNECT huggingface.co:443 HTTP/1.1"]
        monkeypatch.setattr("lightbrain.core.HUB_HOST", "hub.invalid")  # exempted by NO_PROXY: asked directly, and
        monkeypatch.setenv("NO_PROXY", "hub.invalid")  # unreachable, without a word to the proxy
        assert hub_online(timeout=1) is False and len(asked) == 1
        server.shutdown()


def test_write_atomic_gives_a_normal_file_and_leaves_nothing_on_failure(tmp_path):
    """Catches files written with mkstemp's private mode 0600 (others could not read a shared checkpoint) and a
    failed write that leaves a temporary file or a half-written target behind."""
    umask = os.umask(0o022)
    try:
        write_atomic(tmp_path / "a.txt", lambda p: p.write_text("hello"))
        reference = tmp_path / "b.txt"
        reference.write_text("hello")  # a file opened the ordinary way, under the same umask
    finally:
        os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode == reference.stat().st_mode

    def fail(path):
        path.write_text("half")
        raise RuntimeError("the disk is full")

    with pytest.raises(RuntimeError):
        write_atomic(tmp_path / "a.txt", fail)
    assert (tmp_path / "a.txt").read_text() == "hello"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]
