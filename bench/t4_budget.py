"""Full mode's compute, chapter by chapter, and what it would cost on a T4: an estimate, not a GPU measurement.

Measured here, on a CPU: the tokens each step really holds (batches drawn from the real data with full mode's settings:
padding included, inputs cut to 512 tokens) and the floating-point operations of a forward and backward pass at those
shapes, counted by PyTorch's FlopCounterMode on the course's own models (LightBrain-Tiny; FLAN-T5-base's shape).
The FLOPs of
modules that run in fp32 under fp16 autocast (T5's feed-forward output product `wo`, chapter 11) are counted apart.
Assumed: the throughput a T4 sustains in fp16 mixed precision (FP16 below: a quarter of its 65 TFLOP/s tensor-core peak)
and in fp32 (FP32: the same quarter of its 8.1 TFLOP/s fp32 peak); replace them with figures timed on a T4 when they
exist. Beam search is counted by its FLOPs only; decoding a token at a time is limited by memory and Python, not
arithmetic, so its real time is longer.

    python bench/t4_budget.py [--data ../shared/data]
"""

import argparse
import json
import time
from pathlib import Path

import torch
from common import SHARED_DATA, hardware, table
from datasets import Dataset, DatasetDict
from torch.utils.flop_counter import FlopCounterMode

from leximind.model import T5, T5Config
from leximind.multitask import (
    PRESETS,
    SOURCE_LENGTHS,
    TASKS,
    MultiTaskBatches,
    MultiTaskT5,
    _tokenizer_for,
    load_ag_news,
    load_emotion,
    task_probabilities,
)
from lightbrain.cli import PRESETS as LIGHTBRAIN_PRESETS
from lightbrain.core import seed_everything
from lightbrain.model import GPT, GPTConfig
from lightbrain.train import TrainConfig

FP16 = 65e12 / 4  # FLOP/s assumed for a T4 in fp16 mixed precision (an assumption, not a measurement)
FP32 = 8.1e12 / 4  # FLOP/s assumed for a T4 in fp32, no tensor cores (an assumption, not a measurement)
FP32_MODULES = ("wo",)  # run in fp32 under autocast: T5's feed-forward output product (chapter 11)
FULL_SIZES = {
    "summarize": 287_113,
    "emotion": 16_000,
    "topic": 108_000,
}  # full mode's training sets (AG News: 90% of 120,000)


def flops(step) -> torch.Tensor:
    "Floating-point operations of `step()`, counted by PyTorch: (all of them, those in FP32_MODULES)."
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    counts = counter.get_flop_counts()  # module name -> operation -> FLOPs, backward passes included
    fp32 = sum(sum(ops.values()) for name, ops in counts.items() if name.rsplit(".", 1)[-1] in FP32_MODULES)
    return torch.tensor([counter.get_total_flops(), fp32], dtype=torch.float64)


def t4_minutes(work: torch.Tensor) -> float:
    "Minutes a T4 would take for `work` (all FLOPs, fp32 FLOPs) at the assumed throughputs: an estimate."
    total, fp32 = work.tolist()
    return ((total - fp32) / FP16 + fp32 / FP32) / 60


def lightbrain_tiny() -> dict:
    "Chapter 08: LightBrain-Tiny for its full preset's steps; every step is full (packed 128-token blocks)."
    cfg, config = LIGHTBRAIN_PRESETS[GPTConfig]["full"], LIGHTBRAIN_PRESETS[TrainConfig]["full"]
    model = GPT(cfg)
    x = torch.randint(cfg.vocab_size, (1, cfg.context_length))
    per_sequence = flops(lambda: model(x, x)[1].backward())
    sequences = config.batch_size * config.grad_accum
    with torch.no_grad():
        eval_sequence = flops(lambda: model(x, x))
    # train and val estimates
    evals = config.max_steps // config.eval_interval * config.eval_iters * config.batch_size * 2
    return {
        "chapter": "08",
        "what": f"LightBrain-Tiny, {config.max_steps:,} steps",
        "tokens": config.max_steps * sequences * cfg.context_length,
        "flops": config.max_steps * sequences * per_sequence + evals * eval_sequence,
    }


def flan_t5_batches(data_dir: Path) -> tuple[dict, MultiTaskT5, dict]:
    """Each task's full-mode batches (512/128 tokens, batch 8) from the real data in the mirror, FLAN-T5-base's
    shape, reading times."""
    rows = [
        json.loads(line)
        for line in (data_dir / "cnndm_xsum_frank" / "frank_articles_references.jsonl").open(encoding="utf-8")
    ]
    cnn = Dataset.from_list(
        [{"article": r["article"], "highlights": r["reference"]} for r in rows if r["dataset"] == "cnndm"]
    )
    tasks = {
        "summarize": DatasetDict(train=cnn, validation=cnn.select(range(8))),
        "emotion": load_emotion(str(data_dir / "emotion")),
        "topic": load_ag_news(str(data_dir / "ag_news" / "test.csv")),
    }
    # FLAN-T5's own 32,000-piece tokenizer is on the hub: one trained here instead
    tokenizer = _tokenizer_for(tasks, 32_000)
    # MultiTaskBatches's reading time per example: articles, and short texts (tweets, news items)
    seconds, batches = {}, {}
    for kind, names in (("articles", ["summarize"]), ("short texts", ["emotion", "topic"])):
        start = time.perf_counter()
        data = MultiTaskBatches({t: tasks[t] for t in names}, tokenizer, *SOURCE_LENGTHS["full"])
        seconds[kind] = (time.perf_counter() - start) / sum(
            len(tasks[t]["train"]) + len(tasks[t]["validation"]) for t in names
        )
        batches |= {t: data for t in names}
    return batches, MultiTaskT5(T5(T5Config.flan_t5_base())), seconds


def leximind_full(batches: dict, model: MultiTaskT5) -> tuple[dict, dict, float, float]:
    "Chapter 13: FLOPs and tokens of an average full-mode step (tasks mixed as the full datasets' sizes mix them)."
    probabilities = task_probabilities(FULL_SIZES)
    g, per_task, batch_size = torch.Generator().manual_seed(0), {}, PRESETS[TrainConfig]["full"].batch_size
    for task in probabilities:
        data, shapes = batches[task], []
        for _ in range(50):  # 50 batches of each task: their padded shapes
            sources, targets = data.examples[task, "train"]
            idx = torch.randint(len(sources), (batch_size,), generator=g).tolist()
            b = data.collate(task, [sources[i] for i in idx], [targets[i] for i in idx])
            shapes.append((b["input_ids"].shape[1], b["labels"].shape[1] if TASKS[task].kind == "generate" else 0))
        s, t = (round(sum(x) / len(x)) for x in zip(*shapes))
        one = data.collate(task, [torch.zeros(s, dtype=torch.long)], [torch.zeros(t, dtype=torch.long)] if t else [0])
        per_task[task] = {"source": s, "target": t, "flops": batch_size * flops(lambda: model(one).backward())}
    step_flops = sum(probabilities[t] * per_task[t]["flops"] for t in probabilities)  # (all, fp32)
    step_tokens = sum(
        probabilities[t] * batch_size * (per_task[t]["source"] + per_task[t]["target"]) for t in probabilities
    )
    return per_task, probabilities, step_flops, step_tokens


def batch_tokens(task: dict) -> int:
    "Tokens in one of a task's full-mode batches (`leximind_full`'s per-task shapes)."
    return PRESETS[TrainConfig]["full"].batch_size * (task["source"] + task["target"])


def beam_search_flops(
    model: MultiTaskT5, articles: int, length: int, source: int = 512, beams: int = 4
) -> torch.Tensor:
    """Chapter 14's summaries, by FLOPs only (all, fp32): per article one encoder pass and the cross-attention keys and
    values of its source (once, as the KV cache keeps them), then `beams` x `length` decoder tokens, each attending to
    the source."""
    c, ids = model.t5.config, torch.zeros(1, source, dtype=torch.long)
    with torch.no_grad():
        encode = flops(lambda: model.t5.encode(ids, torch.ones_like(ids)))
        memory = model.t5.encode(ids[:, :1], torch.ones_like(ids[:, :1]))
        token = flops(
            lambda: model.t5.decode(torch.zeros(1, 1, dtype=torch.long), memory, torch.ones(1, 1, dtype=torch.long))
        )
    cross_kv = c.n_decoder_layers * 2 * 2 * c.d_model * c.n_heads * c.d_kv * source  # the source's keys and values
    cross_attention = c.n_decoder_layers * 2 * 2 * c.n_heads * c.d_kv * source  # scores and weighted sum, per new token
    fp16_extra = torch.tensor([cross_kv + beams * length * cross_attention, 0.0], dtype=torch.float64)
    return articles * (encode + beams * length * token + fp16_extra)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(SHARED_DATA), help="the offline mirror of the datasets")
    args = p.parse_args()
    seed_everything(0)
    rows = [lightbrain_tiny()]
    batches, model, seconds = flan_t5_batches(Path(args.data))
    per_task, probabilities, step_flops, step_tokens = leximind_full(batches, model)
    main_steps, side_steps = PRESETS[TrainConfig]["full"].max_steps, 200  # chapter 13's side_steps
    rows.append(
        {
            "chapter": "13",
            "what": f"FLAN-T5-base, {main_steps:,} training steps",
            "tokens": main_steps * step_tokens,
            "flops": main_steps * step_flops,
        }
    )
    emotion = per_task["emotion"]  # the two emotion-only runs (a head; labels as text, counted as a head: a bound)
    rows.append(
        {
            "chapter": "13",
            "what": f"9 side runs of {side_steps} steps (7 on all tasks, 2 on emotion)",
            "tokens": side_steps * (7 * step_tokens + 2 * batch_tokens(emotion)),
            "flops": side_steps * (7 * step_flops + 2 * emotion["flops"]),
        }
    )
    length = batches["summarize"].target_length  # summaries as long as 95% of the training targets (chapter 13)
    for n in (1000, 11_490):
        rows.append(
            {
                "chapter": "14",
                "what": f"beam search, {n:,} test articles, {length} tokens (FLOPs only: a lower bound)",
                "tokens": n * (512 + 4 * length),
                "flops": beam_search_flops(model, n, length),
            }
        )
    print(hardware())
    reading = (287_113 + 13_368) * seconds["articles"] + (16_000 + 2_000 + 120_000) * seconds["short texts"]
    print(
        f"MultiTaskBatches reads {1 / seconds['articles']:,.0f} articles and {1 / seconds['short texts']:,.0f}"
        " short texts a second "
        f"on this CPU (measured); full mode's training and validation sets would take {reading / 60:.1f} "
        "minutes here, before step 1"
    )
    print(
        f"assumed T4 throughput: {FP16 / 1e12:.2f} TFLOP/s in fp16 mixed precision, {FP32 / 1e12:.2f} TFLOP/s for the"
        f" fp32 products ({', '.join(FP32_MODULES)}); every time below is an estimate\n"
    )
    print(
        table(
            ["task", "batch shape (source, target)", "probability", "GFLOP per step", "of which fp32"],
            [
                [
                    t,
                    f"8 x ({v['source']}, {v['target']})",
                    round(probabilities[t], 3),
                    *(v["flops"] / 1e9).round().int().tolist(),
                ]
                for t, v in per_task.items()
            ],
        )
    )
    print()
    print(
        table(
            ["chapter", "full-mode work", "tokens", "TFLOP", "of which fp32", "T4 minutes (estimate)"],
            [
                [
                    r["chapter"],
                    r["what"],
                    f"{r['tokens'] / 1e6:,.1f}M",
                    f"{r['flops'][0] / 1e12:,.0f}",
                    f"{r['flops'][1] / 1e12:,.0f}",
                    f"{t4_minutes(r['flops']):,.1f}",
                ]
                for r in rows
            ],
        )
    )


if __name__ == "__main__":
    main()
