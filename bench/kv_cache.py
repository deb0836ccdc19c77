"""Does a preallocated KV cache beat one grown with torch.cat? Our GPT both ways, same weights, one process.

    python bench/kv_cache.py [--rounds N]

Greedy generation with our GPT, its cache made of `KVBuffer`s (allocated once for the whole generation, filled in
place: what `stream` uses) or of buffers that grow by `torch.cat` at every token (the cache before issue 18: each
step allocates a cache one position longer and copies the old one into it). Two shapes: LightBrain-Tiny (context 128,
100 new tokens) at batch 1 and 8, and the same model with a 1,024-token context generating 1,000 tokens at batch 8,
where the cache is large. The two caches alternate, round after round; each keeps its best time. Peak memory is
measured in a separate run (CUDA's counter on a GPU, the profiler's allocation events on a CPU).
"""

import argparse

import torch
from common import hardware, table
from model import best_of

from lightbrain.attention import KVBuffer, peak_memory_mb
from lightbrain.core import get_device
from lightbrain.model import GPT, GPTConfig, KVCache


class CatBuffer(KVBuffer):
    "A cache that grows by concatenation: every call allocates keys and values one step longer and copies the old."

    def append(self, k, v):
        if self.k is not None:
            k, v = torch.cat([self.k, k], dim=2), torch.cat([self.v, v], dim=2)
        self.k, self.v, self.length = k, v, k.shape[2]
        return k, v


@torch.no_grad()
def greedy(model: GPT, prompt: torch.Tensor, n: int, layer: type[KVBuffer]) -> torch.Tensor:
    "`n` greedy tokens after `prompt`, with a cache made of `layer`s."
    cache = KVCache()
    cache.layers = [layer(prompt.shape[1] + n) for _ in model.blocks]
    ids, out = prompt, []
    for _ in range(n):
        ids = model(ids, cache=cache, last_only=True)[0][:, -1].argmax(-1, keepdim=True)
        out.append(ids)
    return torch.cat(out, dim=1)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    device, rows = get_device(), []
    for context, batch, n in [(128, 1, 100), (128, 8, 100), (1024, 8, 1000)]:
        torch.manual_seed(0)
        model = GPT(GPTConfig.lightbrain_tiny(context_length=context, dropout=0.0)).to(device).eval()
        prompt = torch.randint(model.config.vocab_size, (batch, 16), generator=torch.Generator().manual_seed(0))
        prompt = prompt.to(device)
        runs = {"buffer": KVBuffer, "cat": CatBuffer}
        assert torch.equal(greedy(model, prompt, 20, KVBuffer), greedy(model, prompt, 20, CatBuffer))  # same tokens
        best = best_of(
            {k: (lambda layer=layer: greedy(model, prompt, n, layer)) for k, layer in runs.items()}, args.rounds, device
        )
        peak = {
            k: peak_memory_mb(lambda layer=layer: greedy(model, prompt, n, layer), device) for k, layer in runs.items()
        }
        rows.append(
            [
                f"context {context}, batch {batch}, {n} new tokens",
                *(f"{batch * n / best[k]:,.1f} tok/s, {peak[k]:,.1f} MB" for k in runs),
                f"{best['cat'] / best['buffer']:.2f}x",
            ]
        )
    print(f"LightBrain-Tiny shape, fp32, device {device}\nhardware: {hardware()}\n")
    print(table(["greedy generation", "preallocated (KVBuffer)", "grown by torch.cat", "speed, buffer / cat"], rows))


if __name__ == "__main__":
    main()
