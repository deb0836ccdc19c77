"""Our GPT's training step beside nanoGPT's, operator by operator (torch.profiler), same weights and batches.

    python bench/model_profile.py --nanogpt PATH [--config lightbrain_tiny] [--steps N] [--top N]

Each model runs `--steps` AdamW steps under the profiler after a warm-up; the table lists the operators that take
the most self time in either model, the milliseconds per step each spends in them, and the difference. It is how
chapter 07 and bench/README.md explain where the two training steps differ.
"""

import argparse
from collections import defaultdict

import torch
from common import hardware, table
from model import LOSSES, nanogpt_source, nanogpt_twin, random_batches, trainer
from torch.profiler import ProfilerActivity, profile

from lightbrain.core import get_device
from lightbrain.model import GPT, GPTConfig


def self_times(step, steps: int) -> dict[str, float]:
    "Milliseconds of self CPU time per step, by operator name, over `steps` calls of `step`."
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    times = defaultdict(float)
    for event in prof.key_averages():
        times[event.key] += event.self_cpu_time_total / 1000 / steps
    return times


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="lightbrain_tiny", choices=["tiny", "lightbrain_tiny", "gpt2"])
    p.add_argument("--nanogpt", help="nanoGPT's model.py, or a clone's folder (default: $NANOGPT)")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--top", type=int, default=25, help="operators shown")
    args = p.parse_args()
    if not (source := nanogpt_source(args.nanogpt)):
        raise SystemExit("give nanoGPT's model.py: --nanogpt PATH (or set $NANOGPT)")
    device = get_device()
    config = getattr(GPTConfig, args.config)(dropout=0.0)
    torch.manual_seed(0)
    ours = GPT(config).to(device)
    models = {"ours": ours, "nanogpt": nanogpt_twin(ours, source, device)}
    batch = random_batches(config, args.batch, 1, device)
    steps = {name: trainer(m, LOSSES[name], batch, device) for name, m in models.items()}
    for step in steps.values():  # a second warm-up: allocator and thread pools settled
        step()
    times = {name: self_times(step, args.steps) for name, step in steps.items()}
    names = sorted(
        set(times["ours"]) | set(times["nanogpt"]), key=lambda k: -max(times["ours"][k], times["nanogpt"][k])
    )
    rows = [
        [k, f"{times['ours'][k]:.2f}", f"{times['nanogpt'][k]:.2f}", f"{times['ours'][k] - times['nanogpt'][k]:+.2f}"]
        for k in names[: args.top]
    ]
    total = {name: sum(t.values()) for name, t in times.items()}
    rows.append(
        ["all operators", f"{total['ours']:.2f}", f"{total['nanogpt']:.2f}", f"{total['ours'] - total['nanogpt']:+.2f}"]
    )
    print(f"config: {args.config}, batch {args.batch} x {config.context_length}, fp32, {device}\n{hardware()}\n")
    print(table(["operator (self time, ms per step)", "ours", "nanoGPT", "ours - nanoGPT"], rows))


if __name__ == "__main__":
    main()
