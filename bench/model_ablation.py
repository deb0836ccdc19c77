"""Does one matrix product for queries, keys and values beat three? Our GPT both ways, same weights, one process.

    python bench/model_ablation.py [--config lightbrain_tiny|tiny|gpt2] [--rounds N]

The "three products" model is ours with each block's fused `qkv_proj` replaced by a module that applies the fused
weight's three thirds as three separate matrix products (as our attention did before issue 18). Training steps and
greedy generation at batch 1 alternate between the two, round after round; each keeps its best time.
"""

import argparse
import copy

import torch
import torch.nn.functional as F
from common import hardware, table
from model import best_of, make_pair, trainer
from torch import nn

from lightbrain.core import get_device
from lightbrain.generate import generate
from lightbrain.model import GPTConfig


class ThreeProducts(nn.Module):
    "A fused projection's weight used as three matrix products (queries, keys, values), outputs side by side."

    def __init__(self, fused: nn.Linear):
        super().__init__()
        self.fused = fused

    def forward(self, x):
        bias = self.fused.bias.chunk(3) if self.fused.bias is not None else (None,) * 3
        return torch.cat([F.linear(x, w, b) for w, b in zip(self.fused.weight.chunk(3), bias)], dim=-1)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="lightbrain_tiny", choices=["tiny", "lightbrain_tiny", "gpt2"])
    p.add_argument("--rounds", type=int, default=11)
    args = p.parse_args()
    device = get_device()
    config = getattr(GPTConfig, args.config)()
    torch.manual_seed(0)
    fused = make_pair(config, device)[0]
    three = copy.deepcopy(fused)
    for block in three.blocks:
        block.attn.qkv_proj = ThreeProducts(block.attn.qkv_proj)
    g = torch.Generator().manual_seed(0)
    T, steps = config.context_length, 3
    batches = [(torch.randint(config.vocab_size, (8, T), generator=g).to(device),) * 2 for _ in range(steps)]
    loss = lambda m, x, y: m(x, labels=y)[1]
    train = best_of(
        {k: trainer(m, loss, batches, device) for k, m in (("fused", fused), ("three", three))}, args.rounds, device
    )
    prompt = torch.randint(config.vocab_size, (1, 16), generator=g).to(device)
    n = min(100, T - 16)
    fused.eval()
    three.eval()
    with torch.no_grad():
        gen = best_of(
            {k: (lambda m=m: generate(m, prompt, n, temperature=0)) for k, m in (("fused", fused), ("three", three))},
            args.rounds,
            device,
        )
    print(f"config: {args.config}, fp32, device {device}\nhardware: {hardware()}\n")
    print(
        table(
            ["", "one product (qkv_proj)", "three products", "one / three"],
            [
                [
                    "training step (batch 8), tokens/s",
                    *(f"{steps * 8 * T / train[k]:,.0f}" for k in train),
                    f"{train['three'] / train['fused']:.2f}x",
                ],
                [
                    f"greedy generation (batch 1, {n} tokens), tokens/s",
                    *(f"{n / gen[k]:,.1f}" for k in gen),
                    f"{gen['three'] / gen['fused']:.2f}x",
                ],
            ],
        )
    )


if __name__ == "__main__":
    main()
