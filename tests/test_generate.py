"""lightbrain.generate against Hugging Face's generate (greedy, same weights) and its logits processors; sampling
restricted to the allowed set; context cropping; stop tokens; bad input (the command line: test_cli.py)."""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel
from transformers import logging as hf_logging
from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor, TopKLogitsWarper, TopPLogitsWarper

from lightbrain.generate import apply_repetition_penalty, filter_logits, generate, generate_text, stream
from lightbrain.model import GPT, GPTConfig
from lightbrain.tokenizer import save_tokenizer, train_bpe

hf_logging.set_verbosity_error()


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(
        GPT2Config(n_layer=2, n_head=4, n_embd=64, vocab_size=500, n_positions=128, bos_token_id=0, eos_token_id=0)
    ).eval()
    with torch.no_grad():
        for name, p in hf.named_parameters():
            if "ln_" not in name:
                p.normal_(0, 0.3)  # large weights: confident, varied predictions
    return GPT.from_hf(hf), hf


def test_greedy_equals_hf_and_cache_equals_no_cache(pair):
    ours, hf = pair
    prompt = torch.randint(500, (2, 7), generator=torch.Generator().manual_seed(3))
    ref = hf.generate(
        prompt,
        do_sample=False,
        max_new_tokens=60,
        min_new_tokens=60,
        eos_token_id=None,
        pad_token_id=0,
        attention_mask=torch.ones_like(prompt),
    )
    cached = generate(ours, prompt, 60, temperature=0)
    uncached = generate(ours, prompt, 60, temperature=0, use_cache=False)
    assert torch.equal(cached, uncached) and torch.equal(cached, ref) and cached.shape == (2, 67)


def test_long_prompt_is_cropped_and_cache_survives_the_context_limit(pair):
    ours, _ = pair
    long = torch.randint(500, (1, 200))
    out = generate(ours, long, 10, temperature=0)
    assert torch.equal(out[:, 200:], generate(ours, long[:, -128:], 10, temperature=0)[:, 128:])
    near = torch.randint(500, (1, 120))  # crosses the 128-token context while generating
    assert torch.equal(
        generate(ours, near, 20, temperature=0), generate(ours, near, 20, temperature=0, use_cache=False)
    )


def test_filters_match_hf_warpers():
    logits = torch.randn(4, 300, generator=torch.Generator().manual_seed(0)) * 3
    for k in (1, 5, 50):
        assert torch.equal(
            torch.isinf(filter_logits(logits, top_k=k)), torch.isinf(TopKLogitsWarper(k)(None, logits.clone()))
        )
    for p in (0.1, 0.5, 0.9, 0.99):
        assert torch.equal(
            torch.isinf(filter_logits(logits, top_p=p)), torch.isinf(TopPLogitsWarper(p)(None, logits.clone()))
        )


def test_repetition_penalty_matches_hf():
    logits, seen = torch.randn(3, 50), torch.randint(50, (3, 12))
    for penalty in (0.8, 1.0, 1.3, 2.0):
        assert torch.allclose(
            apply_repetition_penalty(logits, seen, penalty),
            RepetitionPenaltyLogitsProcessor(penalty)(seen, logits.clone()),
        )


def _draws(model, prompt, n, **kw):
    return torch.cat([t for t in stream(model, prompt.repeat(n, 1), 1, **kw)])


def test_sampling_never_leaves_the_allowed_set(pair):
    ours, _ = pair
    prompt = torch.randint(500, (1, 5), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = ours(prompt)[0][0, -1]
    probs = logits.softmax(-1)
    order = probs.argsort(descending=True)
    allowed_k = set(order[:7].tolist())
    cum = probs[order].cumsum(0)
    allowed_p = set(order[: int((cum < 0.6).sum()) + 1].tolist())  # smallest prefix reaching 0.6
    assert set(_draws(ours, prompt, 3000, top_k=7, seed=0).tolist()) <= allowed_k
    drawn = set(_draws(ours, prompt, 3000, top_p=0.6, seed=0).tolist())
    assert drawn <= allowed_p and len(drawn) > 1


def test_temperature_sampling_follows_the_distribution(pair):
    ours, _ = pair
    prompt = torch.randint(500, (1, 5), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = (ours(prompt)[0][0, -1] / 1.5).softmax(-1)
    counts = torch.bincount(_draws(ours, prompt, 20000, temperature=1.5, seed=0), minlength=500).float() / 20000
    assert (counts - expected).abs().max() < 0.02


def test_seed_reproduces(pair):
    ours, _ = pair
    prompt = torch.randint(500, (1, 5))
    assert torch.equal(generate(ours, prompt, 20, seed=7), generate(ours, prompt, 20, seed=7))


def test_stop_tokens(pair):
    ours, _ = pair
    prompt = torch.randint(500, (3, 4), generator=torch.Generator().manual_seed(5))
    free = generate(ours, prompt, 30, temperature=0)
    stop = int(free[0, 10])  # a token the first row produces
    out = generate(ours, prompt, 30, temperature=0, stop_tokens=[stop])
    first = int((out[0, 4:] == stop).nonzero()[0])
    assert (out[0, 4 + first :] == stop).all() and torch.equal(out[0, : 4 + first], free[0, : 4 + first])
    alone = generate(ours, prompt[:1], 30, temperature=0, stop_tokens=[stop])
    assert alone.shape[1] == 4 + first + 1  # one row: generation ends when it stops


def test_bad_options(pair):
    ours, _ = pair
    prompt = torch.randint(500, (1, 3))
    for kw, msg in [
        ({"temperature": -0.1}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": 0}, "top_k"),
        ({"repetition_penalty": 0}, "repetition_penalty"),
    ]:
        with pytest.raises(ValueError, match=msg):
            generate(ours, prompt, 5, **kw)
    with pytest.raises(ValueError, match="empty"):
        generate(ours, prompt[:, :0], 5)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    tok = train_bpe("the cat sat on the mat. " * 50, 300, ["<|endoftext|>"])
    torch.manual_seed(0)
    GPT(GPTConfig.tiny(vocab_size=tok.n_vocab)).save(d)
    save_tokenizer(tok, d / "tokenizer.json")
    return d, tok


def test_generate_text_from_empty_prompt(checkpoint):
    d, tok = checkpoint
    model = GPT.load(d).eval()

    def greedy(start: int) -> list[int]:  # by hand: argmax of the model's logits, one token at a time
        ids = [start]
        with torch.no_grad():
            for _ in range(10):
                ids.append(int(model(torch.tensor([ids]))[0][0, -1].argmax()))
        return ids[1:]

    assert greedy(tok.eot_token) != greedy(0)  # so that starting from the wrong token would show
    expected = tok.decode(
        [t for t in greedy(tok.eot_token) if t != tok.eot_token]
    )  # generate_text leaves end-of-text out
    assert generate_text(model, tok, "", 10, temperature=0, stop_at_eot=False) == expected


def test_the_playground_shows_the_research_notice():
    "Catches the playground losing the research-only notice that LightBrain's generated text must carry (issue 17)."
    from lightbrain.generate import RESEARCH_NOTICE, playground

    tok = train_bpe(["a small corpus of words"], vocab_size=260, special_tokens=["<|endoftext|>"])
    box = playground(GPT(GPTConfig.tiny(vocab_size=tok.n_vocab)), tok, "a")
    assert any(RESEARCH_NOTICE in getattr(child, "value", "") for child in box.children)
