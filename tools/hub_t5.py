"""FLAN-T5 as the hub holds it, made offline by `transformers` itself: a folder in the layout of google/flan-t5-small
or google/flan-t5-base (config.json, model.safetensors with its own output matrix, spiece.model and the tokenizer's
files), with random weights and a SentencePiece model trained on real text (the vocabulary is that model's pieces
and T5's 100 sentinels, where FLAN-T5 has 32,128 rows).

The hub cannot be reached from this workplace, so the real FLAN-T5 path (`T5.from_pretrained(folder)`, chapter 13's
`full_setup`, chapter 15's `LexiMind`) is proven on such folders: `tests/test_flan_t5_folder.py` compares our model with
Hugging Face's loaded from the same folder, and `tools/rehearse.py` writes FLAN-T5-base's into `$LIGHTBRAIN_DATA`, where
`full_setup` finds it as it finds local data. Test-only: the packages never import this file.

    python tools/hub_t5.py OUT_FOLDER [--size base] [--texts FILE]
"""

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import sentencepiece as spm
import torch
from safetensors.torch import load_file
from torch import nn
from transformers import T5Config, T5ForConditionalGeneration, T5Tokenizer

from leximind.tokenizer import train_sentencepiece

# google/flan-t5-*'s config.json: what every size shares, then each size's own fields
FLAN_T5 = dict(
    d_kv=64,
    feed_forward_proj="gated-gelu",
    tie_word_embeddings=False,  # FLAN-T5 has an output matrix of its own (T5 1.1), not the embedding's transpose
    relative_attention_num_buckets=32,
    relative_attention_max_distance=128,
    dropout_rate=0.1,
    layer_norm_epsilon=1e-6,
    decoder_start_token_id=0,
    pad_token_id=0,
    eos_token_id=1,
)
SIZES = {
    "tiny": dict(d_model=64, d_kv=16, d_ff=128, num_layers=2, num_decoder_layers=2, num_heads=4),  # for quick tests
    "small": dict(d_model=512, d_ff=1024, num_layers=8, num_decoder_layers=8, num_heads=6),
    "base": dict(d_model=768, d_ff=2048, num_layers=12, num_decoder_layers=12, num_heads=12),
}


def write_flan_t5(folder: str | Path, spiece: bytes, size: str = "base", seed: int = 0):
    """Write a random-weight FLAN-T5 of `size` to `folder` in the hub's layout, with `transformers`' own
    save_pretrained; returns the folder. Its output matrix is distinct from the embedding (checked). Its vocabulary is
    the tokenizer's pieces and T5's 100 sentinels, so that every id it writes decodes."""
    folder = Path(folder)
    vocab_size = spm.SentencePieceProcessor(model_proto=spiece).get_piece_size() + 100
    torch.manual_seed(seed)
    config = T5Config(**(FLAN_T5 | SIZES[size] | {"vocab_size": vocab_size}))
    model = T5ForConditionalGeneration(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.normal_(1.0, 0.1)  # at 1, a swapped norm would go unnoticed
        # transformers 5 ties T5's head to the embedding whatever the config says; FLAN-T5's checkpoints have their own
        model.lm_head.weight = nn.Parameter(torch.randn_like(model.shared.weight) * config.d_model**-0.5)
    model.save_pretrained(folder)
    config_file = folder / "config.json"  # as the hub's google/flan-t5-* have it: the head is not tied
    hub_config = json.loads(config_file.read_text()) | {"tie_word_embeddings": False}
    hub_config.pop("scale_decoder_outputs", None)  # transformers 5's name for the same choice; the hub's files lack it
    config_file.write_text(json.dumps(hub_config, indent=2))
    saved = load_file(folder / "model.safetensors")
    if "lm_head.weight" not in saved or torch.equal(saved["lm_head.weight"], saved["shared.weight"]):
        raise RuntimeError(f"{folder}: transformers saved no output matrix of its own")
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "spiece.model").write_bytes(spiece)
        T5Tokenizer.from_pretrained(d).save_pretrained(folder)  # the tokenizer files transformers writes
    (folder / "spiece.model").write_bytes(spiece)  # the hub's FLAN-T5 has it too (transformers 5 does not write it)
    return folder


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="the folder to write (replaced if it exists)")
    p.add_argument("--size", choices=sorted(SIZES), default="base")
    p.add_argument("--texts", help="a JSON-lines file whose 'text' fields train the tokenizer (default: built-in)")
    p.add_argument("--pieces", type=int, default=32_000, help="SentencePiece pieces, at most (FLAN-T5: 32,000)")
    args = p.parse_args()
    if args.texts:
        texts = [json.loads(line)["text"] for line in open(args.texts, encoding="utf-8")]
    else:
        from lightbrain.data import course_data

        texts = [t for name in ("emotion", "ag_news") for t in course_data(name)["train"]["text"]]
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    write_flan_t5(out, train_sentencepiece(texts, args.pieces), args.size)
    print(
        f"{out}: a random-weight FLAN-T5-{args.size} in the hub's layout ({len(texts):,} texts trained its tokenizer)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
