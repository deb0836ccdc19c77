"""lightbrain.data: loaders checked against the raw mirror files (read here with json/csv), token files checked by
decoding, batches checked against the token array, and every bad input."""
import csv, json, subprocess, sys
from collections import Counter

import numpy as np, pytest, torch
from conftest import shared

from lightbrain.data import (AG_NEWS_LABELS, EMOTION_LABELS, builtin_ag_news, builtin_cnn_dailymail, builtin_emotion,
                             builtin_pubmedqa, get_batch, iter_batches, load_ag_news, load_cnn_dailymail, load_emotion,
                             load_meta, load_pubmedqa, load_text_files, load_tokens, prepare, pubmedqa_text, text_column)
from lightbrain.tokenizer import ENDOFTEXT, BPETokenizer, get_gpt2_tokenizer


@pytest.fixture(scope="module")
def small_tok():
    docs = [pubmedqa_text(ex) for ex in builtin_pubmedqa()["train"].select(range(300))]
    return BPETokenizer.train(docs, 600, [ENDOFTEXT])


# --- loaders on the real mirrors ----------------------------------------------------------------------------

def test_pubmedqa_original_json():
    path = shared("pubmedqa", "ori_pqal.json")
    raw = json.loads(path.read_text())
    dsd = load_pubmedqa(str(path))
    assert list(dsd) == ["train"] and len(dsd["train"]) == 1000
    assert Counter(dsd["train"]["final_decision"]) == {"yes": 552, "no": 338, "maybe": 110}
    for ex in dsd["train"]:
        item = raw[str(ex["pubid"])]
        doc = pubmedqa_text(ex)
        assert item["QUESTION"] in doc and item["LONG_ANSWER"] in doc
        assert all(c in doc for c in item["CONTEXTS"]) and len(ex["context"]["contexts"]) == len(item["CONTEXTS"])


def test_emotion_folder():
    folder = shared("emotion")
    dsd = load_emotion(str(folder))
    assert {s: len(d) for s, d in dsd.items()} == {"train": 16000, "validation": 2000, "test": 2000}
    assert dsd["train"].features["label"].names == EMOTION_LABELS
    raw = [json.loads(l) for l in (folder/"test.hf_format.jsonl").read_text().splitlines()]
    assert dsd["test"]["text"] == [r["text"] for r in raw] and dsd["test"]["label"] == [r["label"] for r in raw]


def test_ag_news_original_csv():
    path = shared("ag_news", "test.csv")
    dsd = load_ag_news(str(path))
    assert list(dsd) == ["test"] and len(dsd["test"]) == 7600
    assert dsd["test"].features["label"].names == AG_NEWS_LABELS == (path.parent/"classes.txt").read_text().split()
    assert Counter(dsd["test"]["label"]) == {0: 1900, 1: 1900, 2: 1900, 3: 1900}
    with open(path, newline="", encoding="utf-8") as f: rows = list(csv.reader(f))
    assert dsd["test"]["text"] == [f"{title} {desc}" for _, title, desc in rows]
    assert dsd["test"]["label"] == [int(c) - 1 for c, _, _ in rows]


def test_cnn_dailymail_local_jsonl():
    path = shared("cnndm_xsum_frank", "frank_articles_references.jsonl")
    with pytest.raises(ValueError, match="no column 'highlights'"): load_cnn_dailymail(str(path))
    dsd = load_cnn_dailymail(str(path), summary_column="reference")
    assert len(dsd["train"]) == 501 and {"article", "highlights"} <= set(dsd["train"].column_names)


# --- loaders on files the test writes -------------------------------------------------------------------------

def test_hub_format_round_trips(tmp_path):
    for name, builtin, loader in [("emotion", builtin_emotion, load_emotion), ("ag", builtin_ag_news, load_ag_news),
                                  ("cnn", builtin_cnn_dailymail, load_cnn_dailymail), ("pubmed", builtin_pubmedqa, load_pubmedqa)]:
        expected = builtin()
        for split, ds in expected.items(): ds.to_json(tmp_path/name/f"{split}.jsonl")
        loaded = loader(str(tmp_path/name))
        assert set(loaded) == set(expected)
        for split in expected: assert loaded[split].to_list() == expected[split].to_list(), (name, split)


def test_labels_as_names_in_csv(tmp_path):
    (tmp_path/"train.csv").write_text("text,label\ngreat news,joy\nterrible,sadness\nwhat,5\n")
    assert load_emotion(str(tmp_path/"train.csv"))["train"]["label"] == [1, 0, 5]
    (tmp_path/"train.csv").write_text("text,label\nhm,boredom\n")
    with pytest.raises(ValueError, match="not one of"): load_emotion(str(tmp_path/"train.csv"))


def test_text_files(tmp_path):
    (tmp_path/"a.txt").write_text("first document\n"); (tmp_path/"b.txt").write_text("second")
    assert load_text_files(tmp_path)["train"]["text"] == ["first document\n", "second"]
    assert load_text_files([tmp_path/"b.txt"])["train"]["text"] == ["second"]


def test_offline_fallback_says_so(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    dsd = load_emotion()
    assert "built-in sample" in capsys.readouterr().out and len(dsd["test"]) == 500
    with pytest.raises(ConnectionError, match="unreachable"): load_emotion("someone/some-dataset")


def test_builtin_samples_are_deterministic_and_shaped():
    assert builtin_emotion()["train"].to_list() == builtin_emotion()["train"].to_list()
    assert builtin_emotion(seed=1)["train"]["text"] != builtin_emotion()["train"]["text"]
    assert set(builtin_emotion()["train"]["label"]) == set(range(6)) and set(builtin_ag_news()["test"]["label"]) == set(range(4))
    pub = builtin_pubmedqa()["train"]
    assert set(pub.column_names) == {"pubid", "question", "context", "long_answer", "final_decision"}
    assert set(pub["final_decision"]) == {"yes", "no", "maybe"}
    cnn = builtin_cnn_dailymail()["test"][0]
    assert cnn["highlights"].split(",")[0] in cnn["article"]  # the summary's facts are in the article


# --- bad input --------------------------------------------------------------------------------------------------

def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"): load_emotion(str(tmp_path/"missing.jsonl"))
    (tmp_path/"empty.jsonl").write_text("")
    with pytest.raises(ValueError, match="is empty"): load_emotion(str(tmp_path/"empty.jsonl"))
    (tmp_path/"latin1.csv").write_bytes("text,label\ncaf\xe9,1\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"): load_emotion(str(tmp_path/"latin1.csv"))
    (tmp_path/"nolabel.jsonl").write_text('{"text": "hello"}\n')
    with pytest.raises(ValueError, match="no column 'label'"): load_emotion(str(tmp_path/"nolabel.jsonl"))
    (tmp_path/"bad.txt").write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError, match="not UTF-8"): load_text_files(tmp_path/"bad.txt")
    with pytest.raises(FileNotFoundError): load_text_files(tmp_path/"nothing.txt")


# --- token files ---------------------------------------------------------------------------------------------------

def _split_docs(tokens: np.ndarray, eot: int) -> list[list[int]]:
    cuts = np.flatnonzero(tokens == eot)
    assert cuts[-1] == len(tokens) - 1, "the stream ends with end-of-text"
    return [tokens[a + 1:b].tolist() for a, b in zip(np.r_[-1, cuts[:-1]], cuts)]


def test_prepare_round_trip(small_tok, tmp_path):
    dsd = builtin_pubmedqa()
    meta = prepare(dsd, small_tok, tmp_path, pubmedqa_text, val_fraction=0.1)
    assert meta == load_meta(tmp_path) and meta["dtype"] == "uint16"
    held = dsd["train"].train_test_split(test_size=0.1, seed=0)
    for split, part in [("train", held["train"]), ("val", held["test"])]:
        tokens = load_tokens(tmp_path, split)
        docs = _split_docs(np.asarray(tokens), small_tok.eot_token)
        assert [small_tok.decode(d) for d in docs] == [pubmedqa_text(ex) for ex in part]
        assert meta["splits"][split] == {"tokens": len(tokens), "documents": len(part)}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.json", "tokenizer.json", "train.bin", "val.bin"]  # no temporary files left


def test_prepare_gpt2_on_the_mirror(tmp_path):
    path = shared("pubmedqa", "ori_pqal.json")
    try: enc = get_gpt2_tokenizer()
    except RuntimeError as e: pytest.skip(str(e))
    meta = prepare(load_pubmedqa(str(path)), enc, tmp_path, pubmedqa_text)
    raw = json.loads(path.read_text()).values()
    expected = sum(len(enc.encode_ordinary(f"Question: {v['QUESTION']}\nContext: {' '.join(v['CONTEXTS'])}\nAnswer: {v['LONG_ANSWER']}")) + 1
                   for v in raw)
    assert meta["splits"]["train"]["tokens"] + meta["splits"]["val"]["tokens"] == expected
    assert meta["tokenizer"]["name"] == "gpt2" and meta["tokenizer"]["vocab_size"] == 50257


def test_prepare_uses_validation_split(small_tok, tmp_path):
    dsd = builtin_emotion()
    meta = prepare(dsd, small_tok, tmp_path)
    assert meta["splits"]["val"]["documents"] == len(dsd["validation"]) and meta["splits"]["train"]["documents"] == len(dsd["train"])


class _BigVocab:
    "A stand-in tokenizer with 70,000 ids, to exercise uint32 files."
    n_vocab, eot_token, name = 70_000, 69_999, "big"
    def decode_single_token_bytes(self, i): return i.to_bytes(4, "little")
    def encode_ordinary(self, text): return [69_000 + len(w) for w in text.split()]


def test_uint32_when_the_vocabulary_needs_it(tmp_path, monkeypatch):
    from datasets import Dataset, DatasetDict
    monkeypatch.setattr("lightbrain.data.save_tokenizer", lambda tokenizer, path: path)  # the stand-in cannot be saved
    dsd = DatasetDict({"train": Dataset.from_dict({"text": ["a bb ccc", "dddd"] * 10})})
    meta = prepare(dsd, _BigVocab(), tmp_path/"big")
    assert meta["dtype"] == "uint32"
    assert set(np.asarray(load_tokens(tmp_path/"big", "train")).tolist()) <= {69_001, 69_002, 69_003, 69_004, 69_999}
    with pytest.raises(ValueError, match="does not fit in uint16"): prepare(dsd, _BigVocab(), tmp_path/"small", dtype="uint16")


def test_prepare_refuses_other_tokenizer_and_bad_data(small_tok, tmp_path):
    from datasets import Dataset, DatasetDict
    dsd = DatasetDict({"train": Dataset.from_dict({"text": ["one document", "another"] * 20})})
    prepare(dsd, small_tok, tmp_path)
    other = BPETokenizer.train("a different corpus entirely " * 20, 300, [ENDOFTEXT])
    with pytest.raises(ValueError, match="another tokenizer"): prepare(dsd, other, tmp_path)
    with pytest.raises(ValueError, match="'train' split"): prepare(DatasetDict({"test": dsd["train"]}), small_tok, tmp_path/"x")
    empty = DatasetDict({"train": dsd["train"], "validation": dsd["train"].select([])})
    with pytest.raises(ValueError, match="empty"): prepare(empty, small_tok, tmp_path/"y")
    with pytest.raises(FileNotFoundError, match="lightbrain-prepare"): load_tokens(tmp_path/"nothing")


# --- batches -----------------------------------------------------------------------------------------------------

def test_get_batch_windows_and_targets():
    data = np.arange(1000, dtype=np.uint16) * 7 % 65521
    x, y = get_batch(data, 8, 16, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (8, 16) and x.dtype == torch.int64
    for row_x, row_y in zip(x.numpy(), y.numpy()):
        start = int(np.flatnonzero(data == row_x[0])[0])
        assert (data[start:start + 16] == row_x).all() and (data[start + 1:start + 17] == row_y).all()
    a = get_batch(data, 4, 16, generator=torch.Generator().manual_seed(5))[0]
    b = get_batch(data, 4, 16, generator=torch.Generator().manual_seed(5))[0]
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="too few"): get_batch(data[:10], 2, 16)


def test_iter_batches_covers_once():
    data = np.arange(101, dtype=np.uint16)
    xs, ys = zip(*iter_batches(data, 3, 10))
    x, y = torch.cat(xs), torch.cat(ys)
    assert x.shape == (10, 10) and torch.equal(x.flatten(), torch.arange(100)) and torch.equal(y.flatten(), torch.arange(1, 101))


# --- command line ----------------------------------------------------------------------------------------------------

def test_cli(small_tok, tmp_path):
    small_tok.save(tmp_path/"tok.json")
    cmd = [sys.executable, "-c", "from lightbrain.data import prepare_cli; prepare_cli()"]
    ok = subprocess.run(cmd + ["--source", "builtin", "--tokenizer", str(tmp_path/"tok.json"), "--out", str(tmp_path/"out")],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "wrote" in ok.stdout, ok.stderr
    assert load_meta(tmp_path/"out")["tokenizer"]["vocab_size"] == small_tok.vocab_size
    bad = subprocess.run(cmd + ["--source", "builtin", "--tokenizer", "nope.json", "--out", str(tmp_path/"x")], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0 and "lightbrain-prepare: error:" in bad.stderr
