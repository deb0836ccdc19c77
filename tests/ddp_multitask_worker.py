"""Run by tests/test_leximind_multitask.py under `torchrun --nproc_per_node=2`: train the quick multi-task T5 for a
few steps with
DistributedDataParallel (gloo, CPU) on the course's real slices, then write this rank's parameters to
OUT_DIR/rank{N}.pt."""

import contextlib
import io
import os
import sys

import torch

from leximind.model import T5, T5Config
from leximind.multitask import TASKS, MultiTaskBatches, MultiTaskT5, count_tokens, load_tasks, multitask_loss
from leximind.tokenizer import SentencePieceTokenizer, train_sentencepiece
from lightbrain.core import seed_everything
from lightbrain.train import TrainConfig, train

out = sys.argv[1]
with contextlib.redirect_stdout(io.StringIO()):
    tasks = load_tasks("quick")
texts = [TASKS[t].prefix + x for t in ("emotion", "topic") for x in tasks[t]["train"]["text"][:1000]]
texts += tasks["summarize"]["train"]["article"][:100]
tokenizer = SentencePieceTokenizer(train_sentencepiece(texts, 500))  # small and quick: this test is about DDP
config = T5Config.tiny(vocab_size=tokenizer.vocab_size, context_length=64)
seed_everything(0)
model = MultiTaskT5(T5(config))
if os.environ["RANK"] == "0":  # the starting weights, to check that training changed them
    torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, f"{out}/init.pt")
data = MultiTaskBatches(tasks, tokenizer, max_source=64, max_target=16)
train(
    model,
    data,
    multitask_loss,
    TrainConfig(batch_size=4, max_steps=6, warmup_steps=2, eval_interval=100, tracker="none", progress=False),
    device="cpu",
    count_tokens=count_tokens,
)
torch.save(
    {k: v.detach().clone() for k, v in model.state_dict().items()}, f"{out}/rank{torch.distributed.get_rank()}.pt"
)
torch.distributed.destroy_process_group()  # as lightbrain-train does: leaving it to exit can abort in gloo's threads
