"""leximind.generate against Hugging Face's generate, token for token, on padded batches: greedy and beam search with
length penalty, early stopping, min_new_tokens and no_repeat_ngram_size; cache on and off; batched against single;
bad input."""

import pytest
import torch
from transformers import T5Config as HFT5Config
from transformers import T5ForConditionalGeneration
from transformers import logging as hf_logging

from conftest import T5_TINY
from leximind.generate import generate_seq2seq
from leximind.model import T5, T5Config

hf_logging.set_verbosity_error()
SETTINGS = [
    dict(),
    dict(num_beams=4),
    dict(num_beams=4, length_penalty=0.6, no_repeat_ngram_size=3),
    dict(min_new_tokens=10, no_repeat_ngram_size=2),
    dict(num_beams=4, early_stopping=True, min_new_tokens=5),
    dict(num_beams=3, length_penalty=2.0),
    dict(num_beams=2, no_repeat_ngram_size=1),
]


def pair(seed):
    "A tiny random T5 with spread-out predictions (shrunk embedding) that often ends early (strengthened eos row)."
    torch.manual_seed(seed)
    hf = T5ForConditionalGeneration(HFT5Config(**T5_TINY | {"vocab_size": 300, "decoder_start_token_id": 0})).eval()
    with torch.no_grad():
        hf.shared.weight.mul_(0.1)
        hf.shared.weight[1] *= 3
        hf.lm_head.weight.copy_(
            hf.shared.weight
        )  # the head transformers 5 ties to the embedding, in transformers 4 too
    g = torch.Generator().manual_seed(seed + 100)
    inputs = torch.randint(3, 300, (3, 12), generator=g)
    mask = torch.ones_like(inputs)
    mask[1, 8:] = 0
    mask[2, 4:] = 0
    return T5.from_hf(hf), hf, inputs, mask


@pytest.mark.parametrize("seed", range(4))
def test_equal_to_hf_and_cache_free_decoding(seed):
    ours_model, hf, inputs, mask = pair(seed)
    for kw in SETTINGS:
        ours = generate_seq2seq(ours_model, inputs, mask, max_new_tokens=40, **kw)
        ref = hf.generate(input_ids=inputs, attention_mask=mask, max_new_tokens=40, do_sample=False, **kw)
        assert ours.shape == ref.shape and torch.equal(ours, ref), kw
        assert torch.equal(
            generate_seq2seq(ours_model, inputs, mask, max_new_tokens=40, use_cache=False, **kw), ours
        ), kw


def test_some_outputs_end_early():
    "The comparison above covers end-of-sequence handling, not only runs to the length limit."
    ours_model, _, inputs, mask = pair(0)
    ended = sum(
        int((generate_seq2seq(ours_model, inputs, mask, max_new_tokens=40, **kw) == 1).any(1).sum()) for kw in SETTINGS
    )
    assert ended >= 3


def test_batched_equals_single():
    model, _, inputs, mask = pair(1)
    for kw in (dict(), dict(num_beams=4)):
        batch = generate_seq2seq(model, inputs, mask, max_new_tokens=30, **kw)
        for row in range(3):
            alone = generate_seq2seq(model, inputs[row : row + 1, : int(mask[row].sum())], max_new_tokens=30, **kw)[0]
            assert torch.equal(batch[row, : len(alone)], alone)


def test_min_new_tokens_and_no_repeat():
    model, _, inputs, mask = pair(2)
    out = generate_seq2seq(model, inputs, mask, max_new_tokens=30, min_new_tokens=15, no_repeat_ngram_size=2)
    for row in out.tolist():
        body = row[1:]
        assert 1 not in body[:15]
        ends = body.index(1) if 1 in body else len(body)
        grams = [tuple(body[i : i + 2]) for i in range(ends - 1)]
        assert len(grams) == len(set(grams))


def test_bad_input():
    model = T5(T5Config.tiny(context_length=16))
    with pytest.raises(ValueError, match="empty"):
        generate_seq2seq(model, torch.ones(2, 4, dtype=torch.long), torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0]]))
    with pytest.raises(ValueError, match="empty"):
        generate_seq2seq(model, torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="num_beams"):
        generate_seq2seq(model, torch.ones(1, 4, dtype=torch.long), num_beams=0)
    # longer than the model reads: refused, not silently cut (the tokenizer is the one place that cuts)
    with pytest.raises(ValueError, match="longer than the model's context_length"):
        generate_seq2seq(model, torch.ones(1, 17, dtype=torch.long), max_new_tokens=3)
    assert generate_seq2seq(model, torch.ones(1, 16, dtype=torch.long), max_new_tokens=3).shape[0] == 1
