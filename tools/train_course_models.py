"""Train the course models that ship inside the package, from scratch on the course's real slices, on a CPU, each in
under an hour; then score each on held-out text beside its baselines and write the weights (fp16), the tokenizer,
the metrics, the training log and a model card.

    python tools/train_course_models.py leximind     # leximind/course_model: about 50 minutes on 2 CPU cores
    python tools/train_course_models.py lightbrain   # lightbrain/course_model: about 45 minutes on 2 CPU cores
    python tools/train_course_models.py lightbrain --out /tmp/try --max-steps 500 --d-model 96   # an experiment

Each recipe's numbers (LEXIMIND and LIGHTBRAIN below) were chosen by the measured runs listed above it.
"""

import argparse
import json
import math
import shutil
import sys
import time
from functools import partial
from pathlib import Path

import datasets
import torch

from leximind.evaluate import baselines, evaluate_leximind, score_table
from leximind.model import T5, T5Config
from leximind.multitask import (
    MultiTaskBatches,
    MultiTaskT5,
    count_tokens,
    load_tasks,
    multitask_loss,
    task_tokenizer,
)
from leximind.tokenizer import SentencePieceTokenizer
from lightbrain.cli import PRESETS, train_lightbrain
from lightbrain.core import cpu_name, parse_value, seed_everything
from lightbrain.data import load_tokens, prepare, pubmedqa_corpus, pubmedqa_text, tokenizer_info
from lightbrain.generate import generate_text
from lightbrain.model import GPT, GPTConfig
from lightbrain.tokenizer import load_tokenizer, save_tokenizer, train_bpe
from lightbrain.train import TrainConfig, evaluate_lm, train

ROOT = Path(__file__).resolve().parents[1]
# The runs that chose LexiMind's recipe (this script, the course's slices, a 2-core AMD EPYC; test scores on the
# test slices):
# - width 192, vocabulary 4,000: each step took twice as long as at width 128, so an hour would buy half the steps;
#   stopped.
# - width 128, vocabulary 8,000, 2,000 steps, one thread each beside the next run: 36.1 minutes; validation loss 1.247
#   (step 500), 1.061 (1,000), 1.028 (1,500); emotion accuracy 0.8995, macro-F1 0.8561 (TF-IDF + logistic
#   regression: 0.8635, 0.7997); topic 0.8570, 0.8529 (TF-IDF: 0.8911, 0.8880); ROUGE-1 9.5 (lead-3: 41.7).
# - the same with vocabulary 4,000: validation loss 1.233 (500), 1.062 (1,000), no better; stopped at 1,400 steps.
# So: width 128, vocabulary 8,000 (its test scores measured), and twice the steps on both cores.
LEXIMIND = {  # every choice, so that a run is repeatable from this dict and a seed
    "seed": 0,
    "vocab_size": 8000,
    "d_model": 128,
    "d_kv": 32,
    "d_ff": 512,
    "n_layers": 3,
    "n_decoder_layers": 1,
    "n_heads": 4,
    "dropout": 0.1,
    "tie_embeddings": True,  # one matrix for the input embedding and the output layer: a smaller file
    "max_source": 256,
    "max_target": 48,
    "temperature": 2.0,
    "pooling": "mean",
    "batch_size": 64,
    "max_steps": 4000,
    "lr": 2e-3,
    "min_lr": 1e-4,
    "warmup_steps": 300,
    "weight_decay": 0.01,
    "eval_interval": 500,
}


# The runs that chose LightBrain's recipe (this script, PubMedQA's course slice, one thread each of a 2-core AMD EPYC,
# two runs side by side; validation loss per token, and bits per byte of the validation text to compare vocabularies):
# - 5 layers of width 192, dropout 0.1, vocabulary 1,024 against 2,048: at step 500, validation loss 3.841 (2.08 bits
#   per byte) against 4.378 (1.94 bits per byte), with each step 7% slower at 2,048: so 2,048. Stopped at 530 steps.
# - 5 layers and 2,048 tokens make 2.64 million parameters, 5.3 MB in fp16: with LexiMind's 4.7 MB, over the 10 MB
#   for both course models. So 4 layers (2.2 million, 4.4 MB).
# - dropout 0.1 against 0.2, 2,000 steps: validation loss 4.349 / 4.011 / 3.873 against 4.433 / 4.136 / 3.965 at
#   steps 500 / 1,000 / 1,500. So 0.1 (its run is the shipped model); 0.2 stopped at 1,500 steps.
# - passes: 2,000 steps of 32 x 128 tokens are 19 passes over the 425,308 training tokens, and the validation loss of
#   dropout 0.1 still fell at the end (3.842 at step 1,750): no sign of overfitting yet, so more steps would help.
LIGHTBRAIN = {  # every choice, so that a run is repeatable from this dict and a seed
    "seed": 0,
    "vocab_size": 2048,
    "n_layers": 4,
    "n_heads": 6,
    "d_model": 192,
    "dropout": 0.1,
    "batch_size": 32,
    "max_steps": 2000,
    "lr": 2e-3,
    "min_lr": 1e-4,
    "warmup_steps": 100,
    "weight_decay": 0.1,
    "eval_interval": 250,
    "eval_iters": 20,
}


def hardware() -> str:
    "The line each model card states its timings and scores with."
    threads = torch.get_num_threads()
    return f"{cpu_name()}, {threads} thread{'s' * (threads > 1)}, torch {torch.__version__}"


def folders(out: Path) -> tuple[Path, Path]:
    "A scratch folder for the run and a staging folder for the shipped files, both emptied, beside `out`."
    work, staging = out.with_name(out.name + ".work"), out.with_name(out.name + ".tmp")
    for folder in (work, staging):
        shutil.rmtree(folder, ignore_errors=True)
    return work, staging


def publish(staging: Path, out: Path, work: Path):
    "Replace `out` with the finished staging folder in one rename, then drop the scratch folder."
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    shutil.rmtree(work, ignore_errors=True)


def train_leximind_recipe(recipe: dict, work: Path) -> tuple[MultiTaskT5, SentencePieceTokenizer, dict, float]:
    """Train the recipe's model in `work`; return the best checkpoint (lowest validation loss), its tokenizer, the
    tasks and the minutes it took."""
    seed_everything(recipe["seed"])
    tasks = load_tasks("quick")
    tokenizer = task_tokenizer(tasks, recipe["vocab_size"])
    sizes = ("d_model", "d_kv", "d_ff", "n_layers", "n_decoder_layers", "n_heads", "dropout", "tie_embeddings")
    config = T5Config(
        vocab_size=tokenizer.vocab_size, context_length=recipe["max_source"], **{k: recipe[k] for k in sizes}
    )
    data = MultiTaskBatches(tasks, tokenizer, recipe["max_source"], recipe["max_target"], recipe["temperature"])
    model = MultiTaskT5(T5(config), pooling=recipe["pooling"], summary_length=data.target_length)
    schedule = ("batch_size", "max_steps", "lr", "min_lr", "warmup_steps", "weight_decay", "eval_interval")
    train_config = TrainConfig(
        **{k: recipe[k] for k in schedule},
        seed=recipe["seed"],
        ckpt_dir=str(work),
        tracker="none",
        progress=sys.stderr.isatty(),  # a bar on a terminal; in a log, the evaluation lines only
    )
    start = time.perf_counter()
    train(model, data, multitask_loss, train_config, "cpu", on_save=tokenizer.save, count_tokens=count_tokens)
    minutes = (time.perf_counter() - start) / 60
    return MultiTaskT5.load(work / "best"), tokenizer, tasks, minutes


LEXIMIND_CARD = """# LexiMind course model

A small T5-style encoder-decoder ({parameters:,} parameters) trained **from scratch** by `python
tools/train_course_models.py` on the course's real data slices (`lightbrain/course_data`), so that `leximind "some
text"` answers without a training run first. Research and teaching only.

- **Good for**: emotion of an English tweet-like sentence (sadness, joy, love, anger, fear, surprise) and topic of a
  news item (World, Sports, Business, Sci/Tech), at the accuracies below.
- **Not good for**: summaries. {n_articles} training articles cannot teach a model from scratch to write English;
  its summaries score far below simply taking the first three sentences (lead-3). Summaries need FLAN-T5's
  pretraining: LexiMind's full mode. Nor for any decision about a person: the labels are those of the datasets.

## Test scores (the course's test slices, disjoint from training)

{table}

Measured on {hardware}, with the shipped fp16 weights read back in fp32. Training took {minutes:.1f} minutes.

## Recipe

{recipe}

The runs that chose it are listed beside `LEXIMIND` in `tools/train_course_models.py`.

## Data and licences

- emotion: dair-ai/emotion (Saravia et al., EMNLP 2018), for research and educational use as its card states.
- topic: AG News test set (Zhang, Zhao and LeCun, NeurIPS 2015), for research and other non-commercial use.
- summaries: 250 CNN/DailyMail test articles via the FRANK benchmark (Apache-2.0 / MIT).

Splits are made by `lightbrain.data.standard_splits` (a hash of each text): no text is in two splits.
"""


def leximind_card(metrics: dict, parameters: int, n_articles: int) -> str:
    "LexiMind's model card, from what `make_leximind` measured."
    return LEXIMIND_CARD.format(
        parameters=parameters,
        n_articles=n_articles,
        table=score_table({"this model": metrics["test"]}, metrics["baselines"]),
        hardware=metrics["hardware"],
        minutes=metrics["minutes"],
        recipe=", ".join(f"{k} {v}" for k, v in metrics["recipe"].items()),
    )


def make_leximind(recipe: dict, out: Path):
    "Train LexiMind's course model and write it, its scores and its card to `out`."
    work, staging = folders(out)
    best, tokenizer, tasks, minutes = train_leximind_recipe(recipe, work)
    best.half().save(staging)  # fp16: half the size; read back in fp32, as the app reads it
    tokenizer.save(staging)
    shutil.copy(work / "log.csv", staging / "log.csv")
    model = MultiTaskT5.load(staging)
    report = evaluate_leximind(model, tokenizer, tasks)
    base = baselines(tasks)
    metrics = {
        "recipe": recipe,
        "minutes": round(minutes, 1),
        "hardware": hardware(),
        "test": report,
        "baselines": base,
    }
    tokenizer_record = {"vocab_size": tokenizer.vocab_size, "fingerprint": tokenizer.fingerprint}
    run = {"mode": "quick", "sources": {}, "tokenizer": tokenizer_record, "recipe": recipe}  # read by leximind-evaluate
    (staging / "run.json").write_text(json.dumps(run, indent=1))
    (staging / "metrics.json").write_text(json.dumps(metrics, indent=1))
    card = leximind_card(metrics, sum(p.numel() for p in model.parameters()), len(tasks["summarize"]["train"]))
    (staging / "README.md").write_text(card)
    publish(staging, out, work)
    print(card)


def text_scores(model: GPT, data: Path, counts: torch.Tensor) -> dict:
    """A language model's loss on the held-out split in `data` (its "val" file), in nats per token and in bits per
    byte of text (which compares tokenizers of any size), beside a unigram model's with the training `counts`."""
    tokens = torch.from_numpy(load_tokens(data, "val").astype("int64"))
    loss, n = evaluate_lm(model, data, "val", progress=False)
    unigram = -(counts / counts.sum()).log()[tokens].mean().item()
    tokenizer = load_tokenizer(data)
    text = tokenizer.decode([t for t in tokens.tolist() if t != tokenizer.eot_token])  # the documents' own text
    bytes_per_token = len(text.encode()) / len(tokens)
    bits = lambda nats: nats / math.log(2) / bytes_per_token
    return {
        "tokens": n,
        "loss": round(loss, 4),
        "perplexity": round(math.exp(loss), 2),
        "bits_per_byte": round(bits(loss), 4),
        "unigram_perplexity": round(math.exp(unigram), 1),
        "unigram_bits_per_byte": round(bits(unigram), 4),
    }


def prepare_pubmedqa(docs: datasets.DatasetDict, tokenizer, folder: Path) -> tuple[Path, Path]:
    """Token files of the course's PubMedQA slice in `folder`: data/ (train and validation, which picks the best
    checkpoint) and test/ (the test documents as its held-out split, scored once at the end)."""
    source = "PubMedQA (course slice)"
    prepare(docs, tokenizer, folder / "data", pubmedqa_text, source=source)
    test = datasets.DatasetDict({"train": docs["test"], "validation": docs["test"]})
    prepare(test, tokenizer, folder / "test", pubmedqa_text, source=source + ", test split")
    return folder / "data", folder / "test"


def unigram_counts(data: Path, vocab_size: int) -> torch.Tensor:
    "How often each token occurs in the training split, plus one (add-one smoothing): the unigram baseline."
    tokens = torch.from_numpy(load_tokens(data, "train").astype("int64"))
    return torch.bincount(tokens, minlength=vocab_size).double() + 1


def make_lightbrain(recipe: dict, out: Path, baseline: bool = True):
    """Train LightBrain's course model and, in the same run, chapter 08's quick model (`baseline`); write the course
    model, both models' scores, samples and a card to `out`."""
    work, staging = folders(out)
    seed_everything(recipe["seed"])
    docs = pubmedqa_corpus("quick")
    texts = [pubmedqa_text(d) for d in docs["train"]]
    tokenizer = train_bpe(texts, recipe["vocab_size"], ["<|endoftext|>"], progress=False)
    data, test = prepare_pubmedqa(docs, tokenizer, work)
    values = {k: v for k, v in recipe.items() if k != "vocab_size"} | {"tracker": "none", "progress": False}
    start = time.perf_counter()
    train_lightbrain(work / "run", "quick", values, data)
    minutes = (time.perf_counter() - start) / 60
    GPT.load(work / "run" / "best").half().save(staging)  # fp16: half the size; read back in fp32
    save_tokenizer(tokenizer, staging)
    (staging / "run.json").write_text(json.dumps({"tokenizer": tokenizer_info(tokenizer)}, indent=1))  # for its users
    shutil.copy(work / "run" / "log.csv", staging / "log.csv")
    model = GPT.load(staging)
    counts = unigram_counts(data, tokenizer.n_vocab)
    report = {"validation": text_scores(model, data, counts), "test": text_scores(model, test, counts)}
    metrics = {"recipe": recipe, "minutes": round(minutes, 1), "hardware": hardware(), "course model": report}
    if baseline:  # chapter 08's quick model: its preset and 1,024-token BPE, on the same documents
        seed_everything(recipe["seed"])
        quick_tokenizer = train_bpe(texts, PRESETS[GPTConfig]["quick"].vocab_size, ["<|endoftext|>"], progress=False)
        quick_data, quick_test = prepare_pubmedqa(docs, quick_tokenizer, work / "quick")
        train_lightbrain(work / "quick" / "run", "quick", {"tracker": "none", "progress": False}, quick_data)
        quick = GPT.load(work / "quick" / "run" / "best")
        counts = unigram_counts(quick_data, quick_tokenizer.n_vocab)
        metrics["chapter 08's quick model"] = {
            "validation": text_scores(quick, quick_data, counts),
            "test": text_scores(quick, quick_test, counts),
        }
    prompts = [f"Question: {docs['test'][0]['question']}\nContext:", "Question: Does aspirin reduce"]
    metrics["samples"] = {  # the prompts of chapter 08 and of lightbrain-train; sampled as lightbrain-generate does
        p: generate_text(model, tokenizer, p, 80, temperature=0.8, top_p=0.95, seed=0) for p in prompts
    }
    (staging / "metrics.json").write_text(json.dumps(metrics, indent=1))
    card = lightbrain_card(metrics, sum(p.numel() for p in model.parameters()))
    (staging / "README.md").write_text(card)
    publish(staging, out, work)
    print(card)


def lightbrain_card(metrics: dict, parameters: int) -> str:
    "LightBrain's model card, from what `make_lightbrain` measured."
    return LIGHTBRAIN_CARD.format(
        parameters=parameters,
        table=text_table(metrics),
        samples="\n\n".join(f"> **{p}**{s}".replace("\n", "\n> ") for p, s in metrics["samples"].items()),
        hardware=metrics["hardware"],
        minutes=metrics["minutes"],
        recipe=", ".join(f"{k} {v}" for k, v in metrics["recipe"].items()),
    )


def text_table(metrics: dict) -> str:
    "Rows of LightBrain's card: each model's held-out scores beside the unigram baseline's."
    rows = []
    for name in ("course model", "chapter 08's quick model"):
        for split, r in metrics.get(name, {}).items():
            rows.append(
                f"| {name} | {split} ({r['tokens']:,} tokens) | {r['perplexity']:.1f} | {r['bits_per_byte']:.3f} "
                f"| {r['unigram_perplexity']:.1f} | {r['unigram_bits_per_byte']:.3f} |"
            )
    return "\n".join(rows)


LIGHTBRAIN_CARD = """# LightBrain course model

A small GPT ({parameters:,} parameters) trained **from scratch** by `python tools/train_course_models.py lightbrain` on
the course's slice of real PubMedQA abstracts (`lightbrain/course_data`), so that `lightbrain-generate` writes text
without a training run first. Research and teaching only; **never for clinical use**.

- **Good for**: seeing what a small language model learns from 800 abstracts: continuing a prompt in the form and
  vocabulary of a PubMedQA item (question, context, answer).
- **Not good for**: facts. It has read 800 abstracts; what it writes is a sample of plausible-looking words, often
  false or meaningless, and it cannot tell. Nothing it writes is medical advice.

## Held-out scores

Perplexity is per token of each model's own tokenizer; bits per byte of text compare models with different
vocabularies. The unigram baseline knows only how often each token occurs in the training split.

| model | held-out split | perplexity | bits per byte | unigram perplexity | unigram bits per byte |
|---|---|---|---|---|---|
{table}

The validation split chose the best checkpoint; the test split was scored once, at the end. Measured on {hardware},
with the shipped fp16 weights read back in fp32. Training took {minutes:.1f} minutes.

## Samples (temperature 0.8, top-p 0.95, seed 0)

{samples}

## Recipe

{recipe}

The runs that chose it are listed beside `LIGHTBRAIN` in `tools/train_course_models.py`.

## Data and licence

PubMedQA's expert-labelled set (PQA-L, Jin et al., EMNLP 2019), MIT licence, Copyright (c) 2019 pubmedqa: 1,000
items split 80/10/10 by `lightbrain.data.standard_splits` (a hash of each question), so no item is in two splits.
"""


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    models = p.add_subparsers(dest="model", required=True)
    for name, recipe in (("leximind", LEXIMIND), ("lightbrain", LIGHTBRAIN)):
        q = models.add_parser(name, help=f"train {name}'s course model")
        q.add_argument("--out", default=str(ROOT / name / "course_model"), help="where the shipped files go")
        for key, value in recipe.items():
            q.add_argument("--" + key.replace("_", "-"), type=partial(parse_value, kind=type(value)), default=value)
    q.add_argument("--no-baseline", action="store_true", help="skip chapter 08's quick model (experiments)")
    args = p.parse_args()
    recipe = {k: getattr(args, k) for k in (LEXIMIND if args.model == "leximind" else LIGHTBRAIN)}
    if args.model == "leximind":
        make_leximind(recipe, Path(args.out))
    else:
        make_lightbrain(recipe, Path(args.out), baseline=not args.no_baseline)


if __name__ == "__main__":
    main()
