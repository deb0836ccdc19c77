import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Offline copies of real data; CI places them beside the clone. Tests that need them skip when absent.
SHARED_DATA = Path(os.environ.get("LIGHTBRAIN_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared(*parts) -> Path:
    "Path to a file in the shared data mirror, or skip the test (saying why) when it is not there."
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found: the offline data mirror is not available here")
    return path


@pytest.fixture(autouse=True)
def fresh_data_notes():
    "Each test starts as a fresh process would: the data notes that print once per process (`data_note`) print again."
    from lightbrain import data

    data._said.clear()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    "PubMedQA (the course's slice) prepared with a 300-token BPE: token files for tiny language-model runs."
    from lightbrain.data import load_pubmedqa, prepare, pubmedqa_text
    from lightbrain.tokenizer import train_bpe

    d = tmp_path_factory.mktemp("data")
    docs = load_pubmedqa("builtin")
    tok = train_bpe([pubmedqa_text(ex) for ex in docs["train"].select(range(500))], 300, ["<|endoftext|>"])
    prepare(docs, tok, d, pubmedqa_text)
    return d


# Gloo, PyTorch's CPU backend, now and then aborts a process while it shuts down, after the work is done and written
# (one run in dozens here; PyTorch's own tracker has reports of it, e.g. pytorch/pytorch#179291). Its signature:
GLOO_TEARDOWN_ABORT = "terminate called without an active exception"


def torchrun(*args: str, timeout: int) -> subprocess.CompletedProcess:
    """Run a worker script under `torchrun --nproc_per_node=2` (one thread each) and return the finished process.
    A run that ends in gloo's teardown abort is run once more; any other failure, or a second abort, is returned."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *map(str, args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for _ in range(2):
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        if res.returncode == 0 or GLOO_TEARDOWN_ABORT not in res.stderr:
            break
    return res


@pytest.fixture(scope="session")
def leximind_quick():
    "Quick mode's tasks, tokenizer, batches and an untrained multi-task T5: (tasks, tokenizer, data, model)."
    from leximind.model import T5
    from leximind.multitask import MultiTaskBatches, MultiTaskT5, load_tasks, quick_setup
    from lightbrain.core import seed_everything

    tasks = load_tasks("quick")
    seed_everything(0)
    tokenizer, backbone_config = quick_setup(tasks)
    return tasks, tokenizer, MultiTaskBatches(tasks, tokenizer, 256, 48), MultiTaskT5(T5(backbone_config))


# Hugging Face T5Config fields: a tiny T5, and FLAN-T5's sizes as their config.json files give them
T5_SMALL = dict(
    vocab_size=32128,
    d_model=512,
    d_kv=64,
    d_ff=1024,
    num_layers=8,
    num_heads=6,
    feed_forward_proj="gated-gelu",
    tie_word_embeddings=False,
)
T5_TINY = T5_SMALL | dict(vocab_size=512, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4)
T5_BASE = T5_SMALL | dict(d_model=768, d_ff=2048, num_layers=12, num_heads=12)  # google/flan-t5-base's config.json
T5_LARGE = T5_SMALL | dict(d_model=1024, d_ff=2816, num_layers=24, num_heads=16)  # google/flan-t5-large's config.json
