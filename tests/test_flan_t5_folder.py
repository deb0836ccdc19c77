"""The real FLAN-T5 path, offline: folders in the hub's layout of google/flan-t5-small and -base (written by
transformers' own save_pretrained, with an output matrix of their own and the hub's config.json: tools/hub_t5.py),
loaded by `T5.from_pretrained(folder)`, chapter 13's `full_setup` and chapter 15's `LexiMind`, and compared with Hugging
Face's model loaded from the same folder: logits, greedy and 4-beam outputs. The weights are random (the hub cannot be
reached here) and the vocabulary is the tokenizer's (SentencePiece trained on the course's texts, plus T5's 100
sentinels); every other dimension is FLAN-T5's. The floor suite (tools/test_floors.sh) runs this file on transformers
4.x, the main test command on 5.x."""

import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, T5ForConditionalGeneration
from transformers import logging as hf_logging

from leximind.app import LexiMind
from leximind.generate import generate_seq2seq
from leximind.model import T5
from leximind.multitask import TASKS, MultiTaskT5, full_setup
from leximind.tokenizer import train_sentencepiece
from lightbrain.data import course_data

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import hub_t5  # noqa: E402

hf_logging.set_verbosity_error()
ARTICLE = (  # a real news item of the course's AG News slice would do as well; this one is plain ASCII
    "The city council voted on Tuesday to turn the old railway station into a public library, after three years of "
    "debate and a petition signed by more than ten thousand residents. Work starts in the spring."
)


@pytest.fixture(scope="module", params=["small", "base"])
def folder(request, tmp_path_factory) -> Path:
    texts = [t for name in ("emotion", "ag_news") for t in course_data(name)["train"]["text"][:3000]]
    return hub_t5.write_flan_t5(tmp_path_factory.mktemp(request.param), train_sentencepiece(texts, 2000), request.param)


def rel(a, b) -> float:
    return float((a - b).abs().max() / b.abs().max())


def test_our_t5_equals_hugging_faces_from_the_same_folder(folder):
    """Catches an output matrix replaced by the embedding (FLAN-T5 has its own; transformers 5 ties T5's by default),
    a config read wrongly from the hub's config.json, and any divergence in logits, greedy or beam search."""
    ours, hf = T5.from_pretrained(folder), T5ForConditionalGeneration.from_pretrained(folder).eval()
    saved = load_file(folder / "model.safetensors")
    assert torch.equal(ours.lm_head.weight, saved["lm_head.weight"])
    assert not torch.equal(ours.lm_head.weight, ours.shared.weight)
    g = torch.Generator().manual_seed(0)
    ids, dec = torch.randint(3, 1000, (2, 24), generator=g), torch.randint(3, 1000, (2, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 15:] = 0
    with torch.no_grad():
        assert (
            rel(
                ours(ids, dec, attention_mask=mask)[0],
                hf(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits,
            )
            <= 1e-5
        )
    for options in (dict(), dict(num_beams=4, no_repeat_ngram_size=3)):
        got = generate_seq2seq(ours, ids, mask, max_new_tokens=10, **options)
        want = hf.generate(input_ids=ids, attention_mask=mask, max_new_tokens=10, do_sample=False, **options)
        assert torch.equal(got, want), options


def test_full_setup_and_leximind_load_the_folder(folder, tmp_path):
    """Catches chapter 13's `full_setup` reading another model or tokenizer than the folder it is given, and a
    LexiMind built on it writing another summary than Hugging Face's model (same folder, same beam search)."""
    tokenizer, flan = full_setup(str(folder))
    hf, hf_tok = T5ForConditionalGeneration.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
    text = TASKS["summarize"].prefix + ARTICLE
    ids = hf_tok(text).input_ids
    assert tokenizer.encode(text) == ids  # the folder's tokenizer, as transformers reads it
    with torch.no_grad():
        x = torch.tensor([ids])
        assert rel(flan(x, x[:, :5])[0], hf(input_ids=x, decoder_input_ids=x[:, :5]).logits) <= 1e-5
    MultiTaskT5(flan, summary_length=12).save(tmp_path)  # what chapter 13 saves, heads untrained
    tokenizer.save(tmp_path)
    app = LexiMind.load(tmp_path, device="cpu")
    want = hf.generate(input_ids=x, num_beams=4, no_repeat_ngram_size=3, max_new_tokens=12, do_sample=False)[0]
    result = app.analyze(ARTICLE)
    assert result["summary"] == tokenizer.decode(want.tolist())
    assert abs(sum(result["topic"]["probabilities"].values()) - 1) < 1e-3  # a new head, untrained, but a distribution
