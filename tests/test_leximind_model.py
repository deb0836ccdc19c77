"""leximind.model against Hugging Face's T5ForConditionalGeneration (random weights, offline): encoder output, logits
and loss on padded batches, FLAN and original-T5 variants, the bucket function, parameter counts; the cache; saving."""

import json

import pytest
import torch
from transformers import T5Config as HFT5Config
from transformers import T5ForConditionalGeneration
from transformers import logging as hf_logging
from transformers.models.t5.modeling_t5 import T5Attention

from conftest import T5_BASE, T5_LARGE, T5_SMALL, T5_TINY
from leximind.model import T5, Seq2SeqCache, T5Config, relative_position_bucket

hf_logging.set_verbosity_error()


HF_SDPA = T5ForConditionalGeneration._supports_sdpa  # transformers 5 has an SDPA path for T5; transformers 4 only eager


def hf_t5(attn="sdpa" if HF_SDPA else "eager", **shape):
    torch.manual_seed(0)
    hf = T5ForConditionalGeneration._from_config(
        HFT5Config(**shape, decoder_start_token_id=0), attn_implementation=attn
    ).eval()
    with torch.no_grad():
        for name, p in hf.named_parameters():
            if "layer_norm" in name:
                p.normal_(1.0, 0.1)  # at 1, a swapped norm would go unnoticed
    return hf


def padded_batch(vocab, g=1):
    g = torch.Generator().manual_seed(g)
    src, dec = torch.randint(2, vocab, (3, 21), generator=g), torch.randint(2, vocab, (3, 8), generator=g)
    mask = torch.ones_like(src)
    mask[1, 13:] = 0
    mask[2, 4:] = 0
    return src, dec, mask


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize(
    "shape",
    [
        T5_TINY,
        T5_SMALL,
        {**T5_TINY, "feed_forward_proj": "relu", "tie_word_embeddings": True},
        {**T5_TINY, "num_decoder_layers": 3},
    ],
    ids=["tiny", "flan-t5-small", "original-t5", "uneven"],
)
def test_parity(shape):
    hf = hf_t5(**shape)
    ours = T5.from_hf(hf)
    src, dec, mask = padded_batch(shape["vocab_size"])
    labels = dec.clone()
    labels[0, 5:] = -100
    with torch.no_grad():
        ref = hf(input_ids=src, attention_mask=mask, decoder_input_ids=dec)
        ref_loss = hf(input_ids=src, attention_mask=mask, labels=labels).loss
        assert rel(ours.encode(src, mask), ref.encoder_last_hidden_state) <= 1e-5
        assert rel(ours(src, dec, attention_mask=mask)[0], ref.logits) <= 1e-5
        assert abs(ours(src, attention_mask=mask, labels=labels)[1].item() - ref_loss.item()) <= 1e-5 * max(
            1, ref_loss.item()
        )


@pytest.mark.skipif(not HF_SDPA, reason="this transformers has no SDPA path for T5")
def test_hf_attention_paths_agree_to_the_same_scale():
    "The tolerance is fair: Hugging Face's own eager and SDPA attention differ by a similar amount."
    src, dec, mask = padded_batch(T5_SMALL["vocab_size"])
    with torch.no_grad():
        a = hf_t5(**T5_SMALL)(input_ids=src, attention_mask=mask, decoder_input_ids=dec).logits
        b = hf_t5("eager", **T5_SMALL)(input_ids=src, attention_mask=mask, decoder_input_ids=dec).logits
    assert rel(a, b) < 1e-5


def test_a_missing_hf_folder_is_refused(tmp_path):
    "Loading from folders in the hub's layout is compared with Hugging Face in test_flan_t5_folder.py."
    with pytest.raises(FileNotFoundError, match="no such folder"):
        T5.from_hf(tmp_path / "missing")


@pytest.mark.parametrize("bidirectional", [True, False])
def test_buckets_match_hf(bidirectional):
    relative = torch.arange(-300, 301)[None, :] - torch.arange(0, 40)[:, None]
    for buckets, distance in [(32, 128), (16, 64), (64, 256)]:
        assert torch.equal(
            relative_position_bucket(relative, bidirectional, buckets, distance),
            T5Attention._relative_position_bucket(relative, bidirectional, buckets, distance),
        )


def test_parameter_counts_match_hf():
    """Each preset has its FLAN-T5's shapes: every named weight (the head counted once, whether tied or not; not the
    stacks' copies of the embedding)."""
    for ours, shape in [
        (T5Config.flan_t5_small(), T5_SMALL),
        (T5Config.flan_t5_base(), T5_BASE),
        (T5Config.flan_t5_large(), T5_LARGE),
    ]:
        with torch.device("meta"):  # shapes only: no memory for FLAN-T5-large's 783M parameters
            named = T5ForConditionalGeneration(HFT5Config(**shape)).named_parameters(remove_duplicate=False)
            hf_count = sum(p.numel() for name, p in named if not name.endswith("embed_tokens.weight"))
            assert sum(p.numel() for p in T5(ours).parameters()) == hf_count, shape


def test_cache_in_chunks_equals_full_decode():
    torch.manual_seed(0)
    model = T5(T5Config.tiny(dropout=0.0)).eval()
    src, dec, mask = padded_batch(512)
    with torch.no_grad():
        enc = model.encode(src, mask)
        full = model.decode(dec, enc, mask)
        cache = Seq2SeqCache(max_len=8)
        parts = [model.decode(dec[:, a:b], enc, mask, cache) for a, b in [(0, 3), (3, 4), (4, 8)]]
    assert len(cache) == 8 and rel(torch.cat(parts, 1), full) <= 1e-5


def test_attention_paths_agree():
    torch.manual_seed(0)
    fast = T5(T5Config.tiny()).eval()
    slow = T5(T5Config.tiny(use_sdpa=False)).eval()
    slow.load_state_dict(fast.state_dict())
    src, dec, mask = padded_batch(512)
    with torch.no_grad():
        assert rel(slow(src, dec, attention_mask=mask)[0], fast(src, dec, attention_mask=mask)[0]) <= 1e-5


def test_save_load_and_errors(tmp_path):
    torch.manual_seed(0)
    model = T5(T5Config.tiny(tie_embeddings=True)).eval()
    model.save(tmp_path)
    loaded = T5.load(tmp_path)
    src, dec, mask = padded_batch(512)
    assert loaded.lm_head.weight is loaded.shared.weight
    assert torch.equal(loaded(src, dec, attention_mask=mask)[0], model(src, dec, attention_mask=mask)[0])
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "d_model": 32}))
    with pytest.raises(ValueError, match="implies"):
        T5.load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "num_layers": 2}))  # Hugging Face's T5 name
    with pytest.raises(ValueError, match="unknown fields"):
        T5.load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "model_type": "lightbrain-gpt"}))
    with pytest.raises(ValueError, match="does not hold"):
        T5.load(tmp_path)


def test_bad_input():
    model = T5(T5Config.tiny())
    with pytest.raises(ValueError, match="non-empty"):
        model.encode(torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="decoder_input_ids, or labels"):
        model(torch.ones(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="feed_forward"):
        T5Config(feed_forward="swiglu")
    with pytest.raises(ValueError, match="unsupported feed-forward"):
        T5.from_hf(T5ForConditionalGeneration(HFT5Config(**{**T5_TINY, "feed_forward_proj": "gated-silu"})))


def test_fp16_autocast_stays_finite_past_fp16_range():
    "Catches the feed-forward output projection running in fp16 (T5's known overflow on a T4): its outputs pass 65,504."
    torch.manual_seed(0)
    model = T5(T5Config.tiny()).eval()
    with torch.no_grad():
        for block in [*model.encoder, *model.decoder]:
            block.ff.wo.weight.mul_(30_000)
    src, dec, mask = padded_batch(512)
    ff, x = model.encoder[0].ff, model.encoder[0].norm2(model.shared(src))
    with torch.no_grad():
        h = torch.nn.functional.gelu(ff.wi_0(x), approximate="tanh") * ff.wi_1(x)
        assert (h @ ff.wo.weight.T).abs().max() > torch.finfo(torch.float16).max  # the test really leaves fp16's range
        ref = model(src, dec, attention_mask=mask)[0]
        with torch.autocast("cpu", dtype=torch.float16):
            out = model(src, dec, attention_mask=mask)[0]
    assert torch.isfinite(out).all() and rel(out.float(), ref) < 1e-2
    model.train()
    with torch.autocast("cpu", dtype=torch.float16):
        loss = model(src, attention_mask=mask, labels=dec)[1]
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
