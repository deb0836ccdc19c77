"""lightbrain.tokenizer against independent references: tiktoken's GPT-2, the CS336 reference BPE trainer,
a naive BPE trainer written here, and Hypothesis-generated text."""

import gc
import io
import json
import tracemalloc
from collections import Counter
from collections.abc import Iterator

import pytest
import regex
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st

import lightbrain.tokenizer
from conftest import shared
from lightbrain.tokenizer import (
    ENDOFTEXT,
    GPT2_PATTERN,
    BPETokenizer,
    get_gpt2_tokenizer,
    load_gpt2_files,
    load_hf_gpt2_files,
    text_chunks,
    train_bpe,
)

SETTINGS = settings(max_examples=150, deadline=None)
TEXT = (
    "The tokenizer reads text as bytes. It merges frequent pairs, again and again: th, he, the, ' the'.\n"
    "Numbers 12345 and 3.14, code `x = f(y)`, accents café naïve, and 日本語 and emoji 👋🏽.\n"
) * 30


@pytest.fixture(scope="module")
def tok():
    return train_bpe(TEXT, vocab_size=256 + 150 + 1, special_tokens=[ENDOFTEXT])


@pytest.fixture(scope="module")
def gpt2_pair():
    "Our GPT-2 tokenizer and tiktoken's, or skip when GPT-2's files cannot be loaded (no network, no cache)."
    try:
        reference = get_gpt2_tokenizer()
    except RuntimeError as e:
        pytest.skip(str(e))
    return load_gpt2_files(), reference


# --- training ----------------------------------------------------------------------------------------------


def _gpt2_unicode_to_bytes():
    printable = [b for b in range(256) if chr(b).isprintable() and chr(b) != " "]
    others = [b for b in range(256) if b not in printable]
    return {chr(b): b for b in printable} | {chr(256 + i): b for i, b in enumerate(others)}


def test_training_matches_cs336_reference():
    "Merge for merge, the CS336 reference trainer's output on its corpus (vocab 500, one special token)."
    fixtures = shared("cs336_2025", "fixtures")
    to_byte = _gpt2_unicode_to_bytes()
    dec = lambda t: bytes(to_byte[c] for c in t)
    ref_merges = [
        tuple(dec(t) for t in line.rstrip("\n").split(" "))
        for line in (fixtures / "train-bpe-reference-merges.txt").read_text(encoding="utf-8").splitlines()
        if line
    ]
    ref_vocab = {dec(t) for t in json.loads((fixtures / "train-bpe-reference-vocab.json").read_text(encoding="utf-8"))}
    tok = train_bpe((fixtures / "corpus.en").read_text(encoding="utf-8"), 500, [ENDOFTEXT])
    assert tok.merges == ref_merges
    assert {tok.decode_single_token_bytes(i) for i in range(tok.vocab_size)} == ref_vocab


def naive_merges(text: str, n_merges: int) -> list[tuple[bytes, bytes]]:
    "The textbook loop: recount every pair of every pre-token after every merge; same tie-break rule."
    words = Counter(tuple(bytes([b]) for b in w.encode()) for w in regex.findall(GPT2_PATTERN, text))
    tokens, merges = {bytes([b]) for b in range(256)}, []
    while len(merges) < n_merges:
        pairs = Counter()
        for w, c in words.items():
            for p in zip(w, w[1:]):
                pairs[p] += c
        if not pairs:
            break
        best = max(pairs, key=lambda p: (pairs[p], p))
        if best[0] + best[1] not in tokens:
            merges.append(best)
            tokens.add(best[0] + best[1])
        merged = Counter()
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] += c
        words = merged
    return merges


@SETTINGS
@given(st.text(alphabet=st.sampled_from("aab c\n'é1.👋"), min_size=1, max_size=200), st.integers(1, 40))
def test_incremental_training_equals_naive(text, n_merges):
    assert train_bpe(text, 256 + n_merges).merges == naive_merges(text, n_merges)[:n_merges]


def test_tie_break_is_greatest_pair():
    # " cd" has pairs (b" ", b"c") and (b"c", b"d"); "ab" has (b"a", b"b"): all seen once. The greatest pair wins.
    assert train_bpe("ab cd", 257).merges == [(b"c", b"d")]


@pytest.mark.parametrize("collector_on", [True, False])
def test_training_leaves_the_garbage_collector_as_it_found_it(collector_on, monkeypatch):
    # training pauses Python's cycle collector for the merge loop; the caller's setting must come back, even when the
    # loop is interrupted (Ctrl-C in a notebook)
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    try:
        gc.enable() if collector_on else gc.disable()
        train_bpe(TEXT, 300)
        assert gc.isenabled() == collector_on
        monkeypatch.setattr(lightbrain.tokenizer, "_train_bpe", interrupted)
        with pytest.raises(KeyboardInterrupt):
            train_bpe(TEXT, 300)
        assert gc.isenabled() == collector_on
    finally:
        gc.enable()


def test_training_is_deterministic_and_accepts_iterables():
    lines = TEXT.splitlines(keepends=True)
    assert train_bpe(lines, 400).merges == train_bpe(iter(lines), 400).merges


# --- round trips and consistency ------------------------------------------------------------------------------


@SETTINGS
@given(st.text())
def test_round_trip(tok, s):
    assert tok.decode(tok.encode(s, allowed_special="none")) == s


@SETTINGS
@given(st.lists(st.text() | st.just(ENDOFTEXT)).map("".join))
def test_to_tiktoken_agrees(tok, s):
    assert tok.to_tiktoken().encode(s, allowed_special="all") == tok.encode(s, allowed_special="all")


@SETTINGS
@given(
    st.lists(st.text(alphabet=st.sampled_from("ab \n\t.'é👋"), max_size=12) | st.just(ENDOFTEXT), max_size=12),
    st.integers(1, 8),
)
def test_encode_iterable_equals_encode(tok, pieces, block):
    "Blocks of a few characters force a cut at every chance: a cut inside a pre-token or a special token would show."
    text = "".join(pieces)
    assert list(tok.encode_iterable(pieces, "all", block=block)) == tok.encode(text, "all")
    assert list(tok.encode_iterable(io.StringIO(text), "all", block=block)) == tok.encode(text, "all")


@SETTINGS
@given(st.data())
def test_decode_never_raises_for_valid_ids(tok, data):
    ids = data.draw(st.lists(st.integers(0, tok.vocab_size - 1)))
    raw = b"".join(tok.decode_single_token_bytes(i) for i in ids)
    assert tok.decode(ids) == raw.decode("utf-8", errors="replace")


def test_special_tokens(tok):
    eot = tok.special_tokens[ENDOFTEXT]
    assert eot == tok.vocab_size - 1
    assert tok.encode("a<|endoftext|>b", allowed_special={ENDOFTEXT}) == tok.encode("a") + [eot] + tok.encode("b")
    assert eot not in tok.encode("a<|endoftext|>b", allowed_special="none")
    with pytest.raises(ValueError, match="special token"):
        tok.encode("a<|endoftext|>b")
    with pytest.raises(ValueError, match="not special tokens"):
        tok.encode("a", allowed_special={"<|fim|>"})
    with pytest.raises(ValueError, match="allowed_special must be"):
        tok.encode("a", allowed_special="some")


def test_save_load(tok, tmp_path):
    loaded = BPETokenizer.load(tok.save(tmp_path / "sub" / "tok.json"))
    assert (loaded.merges, loaded.special_tokens, loaded.pattern) == (tok.merges, tok.special_tokens, tok.pattern)
    assert loaded.encode(TEXT) == tok.encode(TEXT)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["tok.json"]  # no temporary file left behind


# --- GPT-2 parity ---------------------------------------------------------------------------------------------

PARITY = [
    "Hello world",
    " leading space",
    "I'll say it's they've we'd you're THEY'LL I'M",
    "a  b   c    d\n\n\ne \t\tf  \n ",
    "1234567890 3.14159 1,000 -42 2024-11-22",
    "def f(x):\n    return x ** 2  # square\n",
    "naïve café Ångström",
    "👋 👋🏽 👨‍👩‍👧 🇫🇷 ❤️",
    "日本語のテキスト 中文 한국어 русский العربية हिन्दी",
    "doc one<|endoftext|>doc two",
    "   ",
    "\n",
    "",
    "'s's's",
    "x" * 2000,
]


@pytest.mark.parametrize("text", PARITY)
def test_gpt2_parity_gallery(gpt2_pair, text):
    ours, reference = gpt2_pair
    assert ours.encode(text, allowed_special="all") == reference.encode(text, allowed_special="all")
    assert ours.decode(reference.encode(text, allowed_special="all")) == text


@pytest.mark.parametrize("name", ["address.txt", "german.txt", "tinystories_sample.txt", "corpus.en"])
def test_gpt2_parity_real_text(gpt2_pair, name):
    ours, reference = gpt2_pair
    text = shared("cs336_2025", "fixtures", name).read_text(encoding="utf-8")
    assert ours.encode(text, allowed_special="all") == reference.encode(text, allowed_special="all")


def _paragraphs(text: str, layout: str, repeat: int) -> Iterator[str]:
    """`text` `repeat` times, as a file would give it: blank-line paragraphs, line by line; or one huge line, or no
    newline at all, in reads of 1,000 characters."""
    lines = text.splitlines()
    for _ in range(repeat):
        if layout == "blank-line paragraphs":
            yield from (line + "\n\n" for line in lines)
        else:
            line = " ".join(lines) + " "
            yield from (line[i : i + 1000] for i in range(0, len(line), 1000))
    if layout == "one huge line":
        yield "\n"


@pytest.mark.parametrize("layout", ["blank-line paragraphs", "one huge line", "no newline"])
def test_encode_iterable_memory_is_bounded(gpt2_pair, layout):
    """Issue 18: with blank-line paragraphs the old line-based cut found no safe point and read everything. Peak
    memory (tracemalloc) while encoding 5 MB stays under 3 MB, and the ids equal tiktoken's for the whole text."""
    ours, reference = gpt2_pair
    text = shared("tinyshakespeare", "input.txt").read_text(encoding="utf-8")[:200_000]
    whole = "".join(_paragraphs(text, layout, 1))
    assert list(ours.encode_iterable(_paragraphs(text, layout, 1))) == reference.encode_ordinary(whole)
    if layout == "one huge line":  # a file of one line is read in blocks, not lines
        assert list(ours.encode_iterable(io.StringIO(whole))) == reference.encode_ordinary(whole)
    ours.encode(text)  # fill the pre-token cache first: it is bounded separately (100,000 entries)
    tracemalloc.start()
    count = sum(1 for _ in ours.encode_iterable(_paragraphs(text, layout, 25)))  # 5 MB of text, made lazily
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count > 1_250_000 and peak < 3 * 2**20, (count, peak)


def test_gpt2_parity_tinyshakespeare(gpt2_pair):
    ours, reference = gpt2_pair
    text = shared("tinyshakespeare", "input.txt").read_text(encoding="utf-8")
    assert ours.encode(text) == reference.encode(text)
    with open(shared("tinyshakespeare", "input.txt"), encoding="utf-8") as f:
        assert list(ours.encode_iterable(f)) == reference.encode(text)


@SETTINGS
@given(st.text())
def test_gpt2_parity_any_text(gpt2_pair, s):
    ours, reference = gpt2_pair
    assert ours.encode(s, allowed_special="none") == reference.encode_ordinary(s)


def test_gpt2_from_hf_files_and_tiktoken_export(gpt2_pair):
    ours, reference = gpt2_pair
    fixtures = shared("cs336_2025", "fixtures")
    hf = load_hf_gpt2_files(fixtures / "gpt2_vocab.json", fixtures / "gpt2_merges.txt")
    assert hf.vocab_size == reference.n_vocab == 50257 and hf.special_tokens == {ENDOFTEXT: 50256}
    assert hf.ranks == ours.ranks == reference._mergeable_ranks  # tiktoken's own rank table, byte for byte
    text = "The quick brown fox 🦊 jumps<|endoftext|>"
    assert hf.to_tiktoken().encode(text, allowed_special="all") == reference.encode(text, allowed_special="all")


def test_gpt2_save_load_keeps_byte_order(gpt2_pair, tmp_path):
    ours, reference = gpt2_pair
    loaded = BPETokenizer.load(ours.save(tmp_path / "gpt2.json"))
    assert loaded.ranks == ours.ranks and loaded.special_tokens == ours.special_tokens


def test_gpt2_unavailable_error(monkeypatch):
    def offline(name):
        raise ConnectionError("no network")

    monkeypatch.setattr(tiktoken, "get_encoding", offline)
    with pytest.raises(RuntimeError, match="TIKTOKEN_CACHE_DIR"):
        get_gpt2_tokenizer()


# --- bad input --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", [], ["", ""]])
def test_empty_training_text(text):
    with pytest.raises(ValueError, match="empty"):
        train_bpe(text, 300)


def test_vocab_too_small():
    with pytest.raises(ValueError, match="too small"):
        train_bpe("abc", 256, special_tokens=[ENDOFTEXT])


def test_decode_unknown_id(tok):
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.decode([1, tok.vocab_size])
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.decode([-1])


def _write(tmp_path, vocab, merges):
    (tmp_path / "vocab.json").write_text(vocab if isinstance(vocab, str) else json.dumps(vocab), encoding="utf-8")
    (tmp_path / "merges.txt").write_text(merges, encoding="utf-8")
    return tmp_path / "vocab.json", tmp_path / "merges.txt"


def _tiny_gpt2_files():
    "A valid GPT-2-format vocabulary: the 256 byte tokens in GPT-2's order, one merge, one special token."
    chars = sorted(_gpt2_unicode_to_bytes(), key=lambda c: ord(c))
    vocab = {c: i for i, c in enumerate(chars)} | {"Ġt": 256, ENDOFTEXT: 257}
    return vocab, "#version: 0.2\nĠ t\n"


def test_hf_files_valid_and_malformed(tmp_path):
    vocab, merges = _tiny_gpt2_files()
    tok = load_hf_gpt2_files(*_write(tmp_path, vocab, merges))
    assert tok.encode(" t") == [256] and tok.special_tokens == {ENDOFTEXT: 257}
    bad = [
        ("{not json", merges, "not valid JSON"),
        ({k: v for k, v in vocab.items() if k != "a"}, merges, "single-byte tokens"),
        (vocab, "#version: 0.2\nĠ t x\n", "expected two tokens"),
        (vocab, "Ġ \u4e00\n", "outside GPT-2's byte alphabet"),
        (vocab | {"Ġt": 300}, merges, "disagree"),
        ([1, 2], merges, "must map tokens to ids"),
    ]
    for v, m, message in bad:
        with pytest.raises(ValueError, match=message):
            load_hf_gpt2_files(*_write(tmp_path, v, m))
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_gpt2_files(tmp_path / "nope.json", tmp_path / "merges.txt")


def test_load_rejects_other_files(tmp_path):
    (tmp_path / "x.json").write_text('{"hello": 1}')
    with pytest.raises(ValueError, match="not a tokenizer file"):
        BPETokenizer.load(tmp_path / "x.json")
    (tmp_path / "y.json").write_text('{"format": "lightbrain-bpe", "merges": [')
    with pytest.raises(ValueError, match="invalid JSON"):
        BPETokenizer.load(tmp_path / "y.json")


def test_save_and_load_tokenizer_either_kind(tok, gpt2_pair, tmp_path):
    from lightbrain.tokenizer import load_tokenizer, save_tokenizer

    assert load_tokenizer(save_tokenizer(tok, tmp_path / "ours.json")).encode(TEXT) == tok.encode(TEXT)
    _, reference = gpt2_pair
    path = save_tokenizer(reference, tmp_path / "gpt2.json")
    assert json.loads(path.read_text()) == {"format": "tiktoken", "name": "gpt2"}
    assert load_tokenizer(path).encode("hello world") == [31373, 995]  # tiktoken's documented example
    with pytest.raises(FileNotFoundError, match="neither 'gpt2' nor"):
        load_tokenizer(tmp_path / "missing.json")
    with pytest.raises(TypeError, match="cannot save"):
        save_tokenizer(object(), tmp_path / "x.json")


def test_cut_or_edited_gpt2_files_are_refused(tmp_path):
    """Catches a merges file cut to 1,000 lines loading as a tokenizer that treats 49,002 tokens as special and
    encodes "hello world" wrongly (issue 17): OpenAI's files are checked against tiktoken's sha256, and any
    GPT-2-format pair whose merges make fewer tokens than are left over is refused."""
    encoder, vocab_bpe = shared("gpt2", "encoder.json"), shared("gpt2", "vocab.bpe")
    cut = tmp_path / "vocab.bpe"
    cut.write_text("\n".join(vocab_bpe.read_text(encoding="utf-8").splitlines()[:1000]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not GPT-2's original file"):
        load_gpt2_files(encoder, cut)
    with pytest.raises(ValueError, match="the merges make only 999 of 50,257 tokens"):
        load_hf_gpt2_files(encoder, cut)
    assert load_gpt2_files(encoder, vocab_bpe).encode("hello world") == [31373, 995]


def test_training_on_file_chunks_in_processes_equals_training_on_the_text(tmp_path):
    """Issue 18: a file read in blocks and cut at safe points, counted in two processes, must give the merges of the
    whole text counted at once (a cut inside a pre-token, or a lost block, would change the counts)."""
    text = shared("tinyshakespeare", "input.txt").read_text(encoding="utf-8")[:300_000]
    path = tmp_path / "corpus.txt"
    path.write_text(text.replace("\n\n", f"\n{ENDOFTEXT}\n"), encoding="utf-8")
    whole = train_bpe(path.read_text(encoding="utf-8"), 600, [ENDOFTEXT])
    chunked = train_bpe(text_chunks([path], [ENDOFTEXT], block=5_000), 600, [ENDOFTEXT], processes=2)
    assert chunked.merges == whole.merges


def test_text_chunks_refuses_a_file_that_is_not_utf8_in_one_line(tmp_path):
    # the bad byte sits past the first block, so the error comes mid-stream, not on opening
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"plain ascii text " * 100 + "café".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.txt is not UTF-8 text \(.+\): re-save it as UTF-8$"):
        train_bpe(text_chunks([path], block=64), 300)
