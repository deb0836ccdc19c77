"""Run by tests/test_train.py under `torchrun --nproc_per_node=2`: train a tiny GPT with DistributedDataParallel (gloo,
CPU) and write rank 0's losses to the JSON file given as the first argument."""

import json
import sys

import torch

from lightbrain.model import GPT, GPTConfig
from lightbrain.train import TrainConfig, lm_batches, lm_loss, train

out, data = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
model = GPT(GPTConfig.tiny(vocab_size=300, context_length=32))
config = TrainConfig.tiny(
    batch_size=4,
    grad_accum=2,
    max_steps=6,
    warmup_steps=2,
    eval_interval=100,
    log_interval=1,
    tracker="none",
    progress=False,
)
rows = train(model, lm_batches(data, 32, "cpu"), lm_loss, config, device="cpu")
if torch.distributed.get_rank() == 0:
    json.dump([r["loss"] for r in rows], open(out, "w"))
torch.distributed.destroy_process_group()  # as lightbrain-train does: leaving it to exit can abort in gloo's threads
