"""lightbrain.data: loaders checked against the raw mirror files (read here with json/csv), splits checked for shared
documents in every mode and fallback, token files checked by decoding, batches checked against the token array, and
every bad input."""

import csv
import gzip
import json
from collections import Counter
from itertools import combinations

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict, concatenate_datasets

import lightbrain.data as data_module
from conftest import shared
from leximind.multitask import AG_NEWS_LABELS, load_ag_news, load_cnn_dailymail, load_emotion
from lightbrain.data import (
    COURSE_DATA,
    SPLITS,
    course_data,
    get_batch,
    iter_batches,
    load_meta,
    load_pubmedqa,
    load_text_files,
    load_tokens,
    prepare,
    pubmedqa_corpus,
    pubmedqa_text,
    split_by_text,
    standard_splits,
)
from lightbrain.tokenizer import ENDOFTEXT, get_gpt2_tokenizer, train_bpe

KEYS = {"pubmedqa": "question", "emotion": "text", "ag_news": "text", "cnn_dailymail": "article"}
LOADERS = {
    "pubmedqa": load_pubmedqa,
    "emotion": load_emotion,
    "ag_news": load_ag_news,
    "cnn_dailymail": load_cnn_dailymail,
}


@pytest.fixture(scope="module")
def small_tok():
    docs = [pubmedqa_text(ex) for ex in load_pubmedqa("builtin")["train"].select(range(200))]
    return train_bpe(docs, 600, [ENDOFTEXT])


def assert_disjoint(dsd: DatasetDict, key: str, what: str):
    """Fail, printing the overlap, if two of train/validation/test share a document text (or a split is missing or
    empty)."""
    assert list(dsd) == list(SPLITS) and all(len(dsd[s]) for s in SPLITS), (what, {s: len(d) for s, d in dsd.items()})
    texts = {s: set(dsd[s][key]) for s in SPLITS}
    overlap = {f"{a} & {b}": len(texts[a] & texts[b]) for a, b in combinations(SPLITS, 2)}
    print(what, {s: len(d) for s, d in dsd.items()}, "shared documents:", overlap)
    assert not any(overlap.values()), f"{what}: splits share documents {overlap}"


# --- the course's slices ---------------------------------------------------------------------------------------------


def test_course_data_is_the_mirror():
    "Each shipped file holds exactly the mirror's examples (catches an edited, truncated or mislabelled slice)."
    emotion = shared("emotion")
    rows = [
        json.loads(line) for split in SPLITS for line in (emotion / f"{split}.hf_format.jsonl").read_text().splitlines()
    ]
    assert [{"text": r["text"], "label": r["label"]} for r in rows] == [
        {"text": ex["text"], "label": ex["label"]} for split in SPLITS for ex in course_data("emotion")[split]
    ]
    with open(shared("ag_news", "test.csv"), newline="", encoding="utf-8") as f:
        assert [f"{t} {d}" for _, t, d in csv.reader(f)] == course_data("ag_news")["train"]["text"]
    raw = json.loads(shared("pubmedqa", "ori_pqal.json").read_text())
    pub = course_data("pubmedqa")["train"]
    assert [str(i) for i in pub["pubid"]] == list(raw) and pub["long_answer"] == [
        v["LONG_ANSWER"] for v in raw.values()
    ]
    frank = [
        json.loads(line)
        for line in shared("cnndm_xsum_frank", "frank_articles_references.jsonl").read_text().splitlines()
    ]
    assert course_data("cnn_dailymail")["train"]["highlights"] == [
        r["reference"] for r in frank if r["dataset"] == "cnndm"
    ]


def test_course_data_readme_names_every_file():
    readme = (COURSE_DATA / "README.md").read_text()
    for f in sorted(COURSE_DATA.glob("*.jsonl.gz")):
        assert f"`{f.name}`" in readme
        with gzip.open(f, "rt") as g:
            assert json.loads(g.readline())  # readable JSON lines
    assert sum(f.stat().st_size for f in COURSE_DATA.iterdir()) < 4e6  # "a few MB"


# --- splits that share no document ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(LOADERS))
def test_course_slices_and_offline_fallback_are_disjoint(name, monkeypatch, capsys):
    assert_disjoint(LOADERS[name]("builtin"), KEYS[name], f"{name} (course slice)")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert_disjoint(LOADERS[name](None), KEYS[name], f"{name} (offline fallback)")
    assert "course's slice" in capsys.readouterr().out


@pytest.mark.parametrize("name", list(LOADERS))
def test_local_files_with_overlaps_come_back_disjoint(name, tmp_path):
    """Hub-format local files whose splits share documents (as the real emotion splits do) come back disjoint; test
    is kept whole."""
    dsd = LOADERS[name]("builtin")
    leak = dsd["test"].select(range(5))
    files = {
        "train": concatenate_datasets([dsd["train"], leak]),
        "validation": concatenate_datasets([dsd["validation"], leak]),
        "test": dsd["test"],
    }
    for split, ds in files.items():
        ds.to_json(tmp_path / f"{split}.jsonl")
    loaded = LOADERS[name](str(tmp_path))
    assert_disjoint(loaded, KEYS[name], f"{name} (local files)")
    assert loaded["test"][KEYS[name]] == dsd["test"][KEYS[name]]


def test_real_emotion_splits_overlap_and_are_fixed():
    folder = shared("emotion")
    raw = {
        s: [json.loads(line)["text"] for line in (folder / f"{s}.hf_format.jsonl").read_text().splitlines()]
        for s in SPLITS
    }
    assert len(set(raw["train"]) & set(raw["test"])) == 11  # the hub's own splits share tweets
    dsd = load_emotion(str(folder))
    assert_disjoint(dsd, "text", "emotion (mirror)")
    assert {s: len(d) for s, d in dsd.items()} == {"train": 15984, "validation": 1997, "test": 2000}
    assert dsd["test"]["text"] == raw["test"]


def test_pubmedqa_corpus_full_mode(monkeypatch):
    "Full mode: the large configs train, the labelled items validate and test, and none of them is trained on."
    labelled = course_data("pubmedqa")["train"]
    other = lambda ex, i: {"question": ex["question"] if i % 10 == 0 else f"{ex['question']} (other abstract {i})"}
    configs = {
        # stand-ins for the large configs: new questions, and every tenth one a labelled item's
        "pqa_labeled": labelled,
        "pqa_artificial": labelled.select(range(600)).map(other, with_indices=True),
        "pqa_unlabeled": labelled.select(range(400, 1000))
        .map(other, with_indices=True)
        .remove_columns("final_decision"),
    }
    monkeypatch.setattr(data_module, "hub_online", lambda: True)
    monkeypatch.setattr(
        data_module.datasets, "load_dataset", lambda hub, config: DatasetDict({"train": configs[config]})
    )
    corpus = pubmedqa_corpus("full")
    assert_disjoint(corpus, "question", "PubMedQA full mode")
    assert len(corpus["validation"]) + len(corpus["test"]) == 1000  # every labelled item is held out
    monkeypatch.setattr(data_module, "hub_online", lambda: False)
    assert_disjoint(pubmedqa_corpus("full"), "question", "PubMedQA full mode, offline")


def test_split_by_text_is_deterministic_and_keeps_copies_together():
    ds = Dataset.from_dict({"text": [f"doc {i % 300}" for i in range(900)]})  # every text three times
    a = split_by_text(ds, "text", {"train": 0.8, "validation": 0.1, "test": 0.1})
    assert (
        a["test"]["text"] == split_by_text(ds, "text", {"train": 0.8, "validation": 0.1, "test": 0.1})["test"]["text"]
    )
    assert_disjoint(a, "text", "copies")
    assert 600 < len(a["train"]) < 840 and sum(len(d) for d in a.values()) == 900
    with pytest.raises(ValueError, match="add up to 1"):
        split_by_text(ds, "text", {"train": 0.5, "test": 0.2})


def test_standard_splits_carves_missing_splits(capsys):
    ds = Dataset.from_dict({"text": [f"item {i}" for i in range(1000)]})
    out = standard_splits(DatasetDict({"train": ds, "test": ds.select(range(100))}), "text", "x")
    assert_disjoint(out, "text", "carved")
    assert "no validation split" in capsys.readouterr().out and out["test"]["text"] == ds["text"][:100]
    with pytest.raises(ValueError, match="no 'train'"):
        standard_splits(DatasetDict({"a": ds, "b": ds}), "text")


def test_a_split_that_cannot_be_divided_is_refused():
    """Items a text hash already sent to the test split all land there again: a clear error, not an empty split that
    crashes later."""
    test_items = load_ag_news("builtin")["test"]
    with pytest.raises(ValueError, match="split is empty.*give more documents"):
        standard_splits(DatasetDict({"test": test_items}), "text", "AG News")


# --- loaders on the real mirrors ----------------------------------------------------------------------------


def test_pubmedqa_original_json():
    path = shared("pubmedqa", "ori_pqal.json")
    raw = json.loads(path.read_text())
    dsd = load_pubmedqa(str(path))
    assert sum(len(d) for d in dsd.values()) == 1000
    assert sum((Counter(d["final_decision"]) for d in dsd.values()), Counter()) == {"yes": 552, "no": 338, "maybe": 110}
    for ex in dsd["test"]:
        item = raw[str(ex["pubid"])]
        doc = pubmedqa_text(ex)
        assert doc.startswith(f"Question: {item['QUESTION']}\n") and doc.endswith(
            f"Answer: {item['final_decision']}. {item['LONG_ANSWER']}"
        )
        assert all(c in doc for c in item["CONTEXTS"]) and len(ex["context"]["contexts"]) == len(item["CONTEXTS"])


def test_ag_news_original_csv_is_split_three_ways():
    path = shared("ag_news", "test.csv")
    dsd = load_ag_news(str(path))
    assert_disjoint(dsd, "text", "AG News test.csv")
    assert dsd["test"].features["label"].names == AG_NEWS_LABELS == (path.parent / "classes.txt").read_text().split()
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    truth = {f"{title} {desc}": int(c) - 1 for c, title, desc in rows}
    got = {t: y for d in dsd.values() for t, y in zip(d["text"], d["label"])}
    assert got == truth


def test_cnn_dailymail_local_jsonl():
    path = shared("cnndm_xsum_frank", "frank_articles_references.jsonl")
    with pytest.raises(ValueError, match="no column 'highlights'"):
        load_cnn_dailymail(str(path))
    dsd = load_cnn_dailymail(str(path), summary_column="reference")
    assert sum(len(d) for d in dsd.values()) == 501 and {"article", "highlights"} <= set(dsd["train"].column_names)


# --- loaders on files the test writes -------------------------------------------------------------------------


def test_hub_format_round_trips(tmp_path):
    for name, loader in LOADERS.items():
        expected = loader("builtin")
        for split, ds in expected.items():
            ds.to_json(tmp_path / name / f"{split}.jsonl")
        loaded = loader(str(tmp_path / name))
        assert list(loaded) == list(SPLITS)
        for split in SPLITS:
            assert loaded[split].to_list() == expected[split].to_list(), (name, split)


def test_labels_as_names_in_csv(tmp_path):
    (tmp_path / "train.csv").write_text(
        "text,label\ngreat news,joy\nterrible,sadness\nwhat,5\n" + "".join(f"t{i},1\n" for i in range(40))
    )
    dsd = load_emotion(str(tmp_path / "train.csv"))
    got = {t: y for d in dsd.values() for t, y in zip(d["text"], d["label"])}
    assert [got["great news"], got["terrible"], got["what"]] == [1, 0, 5]
    (tmp_path / "train.csv").write_text("text,label\nhm,boredom\n")
    with pytest.raises(ValueError, match="not one of"):
        load_emotion(str(tmp_path / "train.csv"))


def test_text_files(tmp_path):
    (tmp_path / "a.txt").write_text("first document\n")
    (tmp_path / "b.txt").write_text("second")
    assert load_text_files(tmp_path)["train"]["text"] == ["first document\n", "second"]
    assert load_text_files([tmp_path / "b.txt"])["train"]["text"] == ["second"]


def test_offline_fallback_says_so(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    dsd = load_emotion()
    assert "course's slice" in capsys.readouterr().out and len(dsd["test"]) == 2000
    with pytest.raises(ConnectionError, match="unreachable"):
        load_emotion("someone/some-dataset")


# --- bad input --------------------------------------------------------------------------------------------------


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_emotion(str(tmp_path / "missing.jsonl"))
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(ValueError, match="is empty"):
        load_emotion(str(tmp_path / "empty.jsonl"))
    (tmp_path / "latin1.csv").write_bytes("text,label\ncaf\xe9,1\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        load_emotion(str(tmp_path / "latin1.csv"))
    (tmp_path / "nolabel.jsonl").write_text('{"text": "hello"}\n')
    with pytest.raises(ValueError, match="no column 'label'"):
        load_emotion(str(tmp_path / "nolabel.jsonl"))
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError, match="not UTF-8"):
        load_text_files(tmp_path / "bad.txt")
    with pytest.raises(FileNotFoundError):
        load_text_files(tmp_path / "nothing.txt")


# --- token files ---------------------------------------------------------------------------------------------------


def _split_docs(tokens: np.ndarray, eot: int) -> list[list[int]]:
    cuts = np.flatnonzero(tokens == eot)
    assert cuts[-1] == len(tokens) - 1, "the stream ends with end-of-text"
    return [tokens[a + 1 : b].tolist() for a, b in zip(np.r_[-1, cuts[:-1]], cuts)]


def test_prepare_round_trip(small_tok, tmp_path):
    dsd = load_pubmedqa("builtin")
    meta = prepare(dsd, small_tok, tmp_path, pubmedqa_text)
    assert meta == load_meta(tmp_path) and meta["dtype"] == "uint16"
    for split, part in [("train", dsd["train"]), ("val", dsd["validation"])]:
        tokens = load_tokens(tmp_path, split)
        docs = _split_docs(np.asarray(tokens), small_tok.eot_token)
        assert [small_tok.decode(d) for d in docs] == [pubmedqa_text(ex) for ex in part]
        assert meta["splits"][split] == {"tokens": len(tokens), "documents": len(part)}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "meta.json",
        "tokenizer.json",
        "train.bin",
        "val.bin",
    ]  # no temporary files left


def test_prepare_gpt2_on_the_mirror(tmp_path):
    path = shared("pubmedqa", "ori_pqal.json")
    try:
        enc = get_gpt2_tokenizer()
    except RuntimeError as e:
        pytest.skip(str(e))
    dsd = load_pubmedqa(str(path))
    meta = prepare(dsd, enc, tmp_path, pubmedqa_text)
    raw = json.loads(path.read_text())
    text = lambda v: (
        f"Question: {v['QUESTION']}\nContext: {' '.join(v['CONTEXTS'])}\nAnswer: {v['final_decision']}. "
        f"{v['LONG_ANSWER']}"
    )
    for split, part in (("train", dsd["train"]), ("val", dsd["validation"])):
        assert meta["splits"][split]["tokens"] == sum(
            len(enc.encode_ordinary(text(raw[str(i)]))) + 1 for i in part["pubid"]
        )
    assert meta["tokenizer"]["name"] == "gpt2" and meta["tokenizer"]["vocab_size"] == 50257


def test_prepare_uses_validation_split(small_tok, tmp_path):
    dsd = load_emotion("builtin")
    meta = prepare(dsd, small_tok, tmp_path)
    assert meta["splits"]["val"]["documents"] == len(dsd["validation"]) and meta["splits"]["train"]["documents"] == len(
        dsd["train"]
    )


def test_prepare_holds_out_by_text(small_tok, tmp_path):
    "Without a validation split, prepare holds documents out by text: a repeated document cannot be on both sides."
    docs = DatasetDict({"train": Dataset.from_dict({"text": [f"document number {i % 200}" for i in range(1000)]})})
    prepare(docs, small_tok, tmp_path, val_fraction=0.2)
    split_docs = {
        s: {small_tok.decode(d) for d in _split_docs(np.asarray(load_tokens(tmp_path, s)), small_tok.eot_token)}
        for s in ("train", "val")
    }
    assert split_docs["train"] and split_docs["val"] and not split_docs["train"] & split_docs["val"]


class _BigVocab:
    "A stand-in tokenizer with 70,000 ids, to exercise uint32 files."

    n_vocab, eot_token, name = 70_000, 69_999, "big"

    def decode_single_token_bytes(self, i):
        return i.to_bytes(4, "little")

    def encode_ordinary(self, text):
        return [69_000 + len(w) for w in text.split()]


def test_uint32_when_the_vocabulary_needs_it(tmp_path, monkeypatch):
    monkeypatch.setattr("lightbrain.data.save_tokenizer", lambda tokenizer, path: path)  # the stand-in cannot be saved
    part = Dataset.from_dict({"text": ["a bb ccc", "dddd"] * 10})
    dsd = DatasetDict({"train": part, "validation": part})
    meta = prepare(dsd, _BigVocab(), tmp_path / "big")
    assert meta["dtype"] == "uint32"
    assert set(np.asarray(load_tokens(tmp_path / "big", "train")).tolist()) <= {69_001, 69_002, 69_003, 69_004, 69_999}
    with pytest.raises(ValueError, match="does not fit in uint16"):
        prepare(dsd, _BigVocab(), tmp_path / "small", dtype="uint16")


def test_prepare_refuses_other_tokenizer_and_bad_data(small_tok, tmp_path):
    dsd = DatasetDict({"train": Dataset.from_dict({"text": [f"document {i}" for i in range(40)]})})
    prepare(dsd, small_tok, tmp_path)
    other = train_bpe("a different corpus entirely " * 20, 300, [ENDOFTEXT])
    with pytest.raises(ValueError, match="another tokenizer"):
        prepare(dsd, other, tmp_path)
    with pytest.raises(ValueError, match="'train' split"):
        prepare(DatasetDict({"test": dsd["train"]}), small_tok, tmp_path / "x")
    empty = DatasetDict({"train": dsd["train"], "validation": dsd["train"].select([])})
    with pytest.raises(ValueError, match="empty"):
        prepare(empty, small_tok, tmp_path / "y")
    with pytest.raises(FileNotFoundError, match="lightbrain-prepare"):
        load_tokens(tmp_path / "nothing")


# --- batches -----------------------------------------------------------------------------------------------------


def test_get_batch_windows_and_targets():
    data = np.arange(1000, dtype=np.uint16) * 7 % 65521
    x, y = get_batch(data, 8, 16, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (8, 16) and x.dtype == torch.int64
    for row_x, row_y in zip(x.numpy(), y.numpy()):
        start = int(np.flatnonzero(data == row_x[0])[0])
        assert (data[start : start + 16] == row_x).all() and (data[start + 1 : start + 17] == row_y).all()
    a = get_batch(data, 4, 16, generator=torch.Generator().manual_seed(5))[0]
    b = get_batch(data, 4, 16, generator=torch.Generator().manual_seed(5))[0]
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="too few"):
        get_batch(data[:10], 2, 16)


def test_iter_batches_covers_once():
    data = np.arange(101, dtype=np.uint16)
    xs, ys = zip(*iter_batches(data, 3, 10))
    x, y = torch.cat(xs), torch.cat(ys)
    assert (
        x.shape == (10, 10)
        and torch.equal(x.flatten(), torch.arange(100))
        and torch.equal(y.flatten(), torch.arange(1, 101))
    )


def test_local_copies_folder_replaces_the_hub(tmp_path, monkeypatch, capsys):
    """Catches LIGHTBRAIN_DATA being ignored (the loaders would fall back to the course's slice) or read for another
    dataset."""
    (tmp_path / "emotion").mkdir()
    rows = [{"text": f"i feel test sentence number {i}", "label": i % 6} for i in range(50)]
    (tmp_path / "emotion" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setattr(data_module, "hub_online", lambda: False)
    monkeypatch.setenv("LIGHTBRAIN_DATA", str(tmp_path))
    dsd = load_emotion()
    assert sum(len(ds) for ds in dsd.values()) == 50 and "local files" in capsys.readouterr().out
    assert (
        len(load_ag_news()["test"]) > 500 and "course's slice" in capsys.readouterr().out
    )  # no copy of AG News: the slice
    monkeypatch.setenv("LIGHTBRAIN_DATA", str(tmp_path / "missing"))
    assert sum(len(ds) for ds in load_emotion().values()) > 50


def test_malformed_pubmedqa_items_are_refused(tmp_path):
    """Catches CONTEXTS given as one string being joined letter by letter ("T e l e p h o n e") and a null QUESTION
    becoming the text "Question: None" (issue 17)."""
    item = {"QUESTION": "Does it help?", "CONTEXTS": ["Telephone follow-up was tested."], "LONG_ANSWER": "It does."}
    for change, message in [
        ({"CONTEXTS": "Telephone follow-up was tested."}, "CONTEXTS must be a list of passages"),
        ({"QUESTION": None}, "needs QUESTION and LONG_ANSWER texts"),
    ]:
        path = tmp_path / "ori_pqal.json"
        path.write_text(json.dumps({"1": item, "2": item | change}))
        with pytest.raises(ValueError, match=f"item 2.*{message}"):
            load_pubmedqa(str(path))
    bad = {"pubid": 7, "question": "Q?", "context": {"contexts": "Telephone"}, "long_answer": "A."}
    with pytest.raises(ValueError, match="PubMedQA item 7: needs a question text and a list of passages"):
        pubmedqa_text(bad)
    with pytest.raises(ValueError, match="item 8"):
        pubmedqa_text(bad | {"pubid": 8, "question": None, "context": {"contexts": ["fine"]}})


def test_a_dataset_note_prints_once_per_process(capsys):
    # Catches: the same "course's slice" and split notes printed again each time a chapter loads a dataset.
    from lightbrain.data import load_pubmedqa

    load_pubmedqa("builtin")
    first = capsys.readouterr().out
    load_pubmedqa("builtin")
    assert "course's slice" in first and capsys.readouterr().out == ""
