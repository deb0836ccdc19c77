"""Bad input, everywhere a user can give it (issue 17): each case must end in one clear, specific error (or, for text
that tokenizers must accept, the same result as the reference library), never in a traceback from deep inside
torch, datasets or safetensors, and never in a silently wrong result. Each test names the bug it catches."""

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys

import pytest
import sentencepiece as spm
import torch

from leximind.app import analyze_command
from leximind.generate import generate_seq2seq
from leximind.model import T5, T5Config
from leximind.multitask import TASKS, MultiTaskT5, load_ag_news, load_cnn_dailymail, load_emotion, run_files
from leximind.tokenizer import SentencePieceTokenizer, train_sentencepiece
from lightbrain.cli import evaluate_command, generate_command, train_command
from lightbrain.core import get_device, progress_bar, show_progress
from lightbrain.data import course_data, load_meta, load_pubmedqa, load_tokens, prepare, pubmedqa_text
from lightbrain.generate import generate
from lightbrain.model import GPT, GPTConfig
from lightbrain.tokenizer import BPETokenizer, get_gpt2_tokenizer, load_gpt2_files, save_tokenizer, train_bpe
from lightbrain.train import TrainConfig

TEXTS = ["plain ascii", "nul\x00byte", "emoji 😀🧪 and 👩‍⚕️", "שלום עולם، مرحبا", "", "   \n\t  ", "e\u0301 vs é"]
LONE = ["a\ud800b", "caf\udce9", "\udfff", "pair \ud83d\ude00 split"]  # lone surrogates (the last is a valid pair)


@pytest.fixture(scope="module")
def gpt2_pair():
    try:
        reference = get_gpt2_tokenizer()
    except RuntimeError as e:
        pytest.skip(str(e))
    return load_gpt2_files(), reference


def test_odd_text_through_the_bpe_tokenizer_matches_tiktoken(gpt2_pair):
    """Catches: lone surrogates crashing encode with UnicodeEncodeError (they did) instead of becoming U+FFFD as in
    tiktoken; any difference from tiktoken on NUL bytes, emoji, right-to-left text, empty and blank text, and on
    pieces thousands of bytes long (chapter 01's heap path: the pair-by-pair scan took 134 s for 32,000 bytes)."""
    ours, reference = gpt2_pair
    rng = random.Random(0)
    long = ["a" * 32_000, "ab" * 3000, "".join(rng.choice("abcdefgh") for _ in range(4000)), "é" * 2000, "-" * 999]
    for text in TEXTS + LONE + long:
        assert ours.encode(text) == reference.encode(text), text
        assert ours.encode_ordinary(text) == reference.encode_ordinary(text), text
    for text in TEXTS:  # valid text: the round trip is exact
        assert ours.decode(ours.encode(text)) == text


def test_ids_outside_the_vocabulary_are_refused():
    """Catches: a decode that silently skips or wraps an unknown id, a generation from a prompt made by another
    tokenizer failing deep in the embedding with 'index out of range in self' (it did)."""
    tok = train_bpe("hello world " * 20, 300, ["<|endoftext|>"])
    for bad in ([tok.n_vocab], [-1]):
        with pytest.raises(ValueError, match="not in the vocabulary"):
            tok.decode(bad)
    model = GPT(GPTConfig.tiny(vocab_size=300, context_length=16))
    for bad in (torch.tensor([[5, 300]]), torch.tensor([[-1]])):
        with pytest.raises(ValueError, match=r"outside 0\.\.299: was it made by another tokenizer"):
            generate(model, bad, 3)
    with pytest.raises(ValueError, match="max_new_tokens must be >= 0"):  # it returned the prompt silently
        generate(model, torch.tensor([[1]]), -1)


def test_a_special_token_on_an_ordinary_id_says_where_special_ids_start():
    "Catches the misleading 'special token ids [0] collide with ordinary token ids' (issue 17)."
    with pytest.raises(ValueError, match=r"ordinary tokens' ids \(0 to 255\): special tokens take the ids after them"):
        BPETokenizer([], {"<|endoftext|>": 0})


def test_sentencepiece_accepts_any_python_string():
    "Catches: sentencepiece's 'Unable to cast Python instance of type str' on a lone surrogate (it did)."
    texts = [ex["text"] for ex in course_data("emotion")["train"].select(range(3000))]
    tok = SentencePieceTokenizer(train_sentencepiece(texts, 600))
    for text in LONE:
        assert tok.encode(text) == tok.encode(text.encode("utf-16", "surrogatepass").decode("utf-16", "replace"))
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.decode([tok.vocab_size])


def _write(folder, name, content) -> str:
    path = folder / name
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content, encoding="utf-8")
    return str(path)


def test_a_bad_file_is_one_line_when_it_is_the_first_use_of_datasets(tmp_path):
    """Catches `from datasets.exceptions import ...` run while the lazy `datasets` module (chapter 00) is not yet
    loaded: it imports a second copy of the module, so `datasets`' own error escaped as a traceback in a fresh process
    (a command line's first read), though it was caught in a test session that had loaded `datasets` earlier."""
    bad = _write(tmp_path, "cut.jsonl", json.dumps({"text": "a tweet", "label": 1}) + '\n{"text": "half a li')
    code = f"from leximind.multitask import load_emotion\nload_emotion({bad!r})"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 1 and run.stderr.strip().splitlines()[-1].startswith(
        f"ValueError: {bad} could not be read"
    )


def test_bad_data_files_get_one_clear_error(tmp_path):
    """Catches what issue 17 found: a truncated JSON(L) file or a CSV row with an extra field ended in datasets'
    DatasetGenerationError ('An error occurred while generating the dataset'); a null text in AttributeError
    ('NoneType' object has no attribute 'encode'); plus every other malformed file a loader meets."""
    rows = [json.dumps({"text": f"tweet number {i} here", "label": i % 6}) for i in range(40)]
    good = "\n".join(rows)
    cases = [
        ("missing.jsonl", None, "no such file or folder"),
        ("empty.jsonl", "", "is empty"),
        ("binary.jsonl", bytes(range(256)), "is not UTF-8 text"),
        ("latin1.jsonl", (good + '\n{"text": "caf\xe9", "label": 1}').encode("latin-1"), "is not UTF-8 text"),
        ("cut.jsonl", good + '\n{"text": "half a li', "could not be read (JSON parse error"),
        ("cut.json", json.dumps([json.loads(r) for r in rows])[:-30], "could not be read"),
        (
            "ragged.csv",
            "text,label\n" + "".join(f"t {i},{i % 6}\n" for i in range(40)) + "x,1,extra\n",
            "could not be read",
        ),
        ("label9.jsonl", good + '\n{"text": "x y", "label": 9}', "label 9 is not one of"),
        ("happy.jsonl", good + '\n{"text": "x y", "label": "happy"}', "label 'happy' is not one of"),
        ("nolabel.jsonl", good + '\n{"text": "x y", "label": null}', "label None is not one of"),
        ("notext.jsonl", good + '\n{"text": null, "label": 1}', "has no text (None): fill it in or remove it"),
        ("nocolumn.jsonl", "\n".join(json.dumps({"tweet": "t"}) for _ in range(40)), "has no column 'text'"),
        ("words.txt", "hello", "expected files of one format"),
    ]
    for name, content, message in cases:
        source = str(tmp_path / name) if content is None else _write(tmp_path, name, content)
        with pytest.raises((ValueError, FileNotFoundError), match=message.replace("(", r"\(").replace(")", r"\)")):
            load_emotion(source)
    assert load_emotion(_write(tmp_path, "named.jsonl", good + '\n{"text": "x y z", "label": "joy"}'))  # a name: fine
    ag = "\n".join(f'"{1 + i % 5}","title {i}","text {i}"' for i in range(40))  # class 5 does not exist
    with pytest.raises(ValueError, match="label 4 is not one of"):
        load_ag_news(_write(tmp_path, "ag.csv", ag))
    cnn = "\n".join(json.dumps({"article": None if i == 3 else f"a {i}", "highlights": "h"}) for i in range(40))
    with pytest.raises(ValueError, match="CNN/DailyMail: example 3 has no text"):
        load_cnn_dailymail(_write(tmp_path, "cnn.jsonl", cnn))
    pubmed = [
        {"pubid": i, "question": None, "context": {"contexts": ["c"]}, "long_answer": "a", "final_decision": "yes"}
        for i in range(40)
    ]
    with pytest.raises(ValueError, match="PubMedQA: example 0 has no text"):  # it became 'Question: None'
        load_pubmedqa(_write(tmp_path, "pq.jsonl", "\n".join(map(json.dumps, pubmed))))


def test_prepare_and_load_tokens_refuse_what_would_train_on_wrong_tokens(tmp_path):
    """Catches: prepare without text_fn ending in a raw KeyError: 'text' (it did); token files whose size does not
    match meta.json read as valid (load_tokens never checked); a prepare killed while rewriting a folder leaving the
    old meta.json beside new token files (training then ran on a train split holding validation documents)."""
    docs = load_pubmedqa("builtin")
    tok = train_bpe([pubmedqa_text(ex) for ex in docs["train"].select(range(100))], 300, ["<|endoftext|>"])
    with pytest.raises(ValueError, match="read by text_fn=text_column, has no column 'text'"):
        prepare(docs, tok, tmp_path / "d")
    prepare(docs, tok, tmp_path / "d", pubmedqa_text)
    with open(tmp_path / "d" / "val.bin", "ab") as f:
        f.write(b"\0\0")
    with pytest.raises(ValueError, match="not meta.json's"):
        load_tokens(tmp_path / "d", "val")

    calls = []

    def dies_on_validation(example):  # a kill during the rewrite: after train.bin, before val.bin is written
        calls.append(1)
        if len(calls) > 1 + len(docs["train"]):  # one call to check it, then one per training document
            raise RuntimeError("killed")
        return pubmedqa_text(example)

    with pytest.raises(RuntimeError, match="killed"):
        prepare(docs, tok, tmp_path / "d", dies_on_validation)
    with pytest.raises(FileNotFoundError, match="no prepared tokens"):
        load_meta(tmp_path / "d")


@pytest.fixture(scope="module")
def gpt_checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt") / "ckpt"
    tok = train_bpe("a small text for a small model " * 20, 300, ["<|endoftext|>"])
    GPT(GPTConfig.tiny(vocab_size=300, context_length=16)).save(folder)
    save_tokenizer(tok, folder)
    return folder


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: (f / "model.safetensors").write_bytes(b""), "is damaged or not a safetensors file"),
        (lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:500]), "damaged"),
        (lambda f: (f / "model.safetensors").write_bytes(b"\0garbage" * 50), "damaged"),
        (lambda f: (f / "model.safetensors").unlink(), "has config.json but no model.safetensors"),
        (lambda f: (f / "config.json").write_text('{"model_type": "lightbrain-gpt", '), "is not valid JSON"),
        (lambda f: _edit_config(f, d_model="wide"), "d_model is 'wide', not of type int"),
        (lambda f: _edit_config(f, n_heads=0), "n_heads must be at least 1, got 0"),
        (lambda f: _edit_config(f, dropout=1.5), r"dropout must be in \[0, 1\)"),
        (lambda f: _edit_config(f, bogus=1), "unknown fields \\['bogus'\\]"),
        (lambda f: _edit_config(f, n_layers=3), "the checkpoint is from another config"),
        (lambda f: _edit_config(f, model_type="leximind-t5"), "does not hold a lightbrain-gpt model"),
        (lambda f: shutil.rmtree(f), "ckpt: no such folder"),
        (lambda f: [p.unlink() for p in f.iterdir()], "is not a saved model"),
        # round two (issue 35): a 300-byte config.json asking for a 16,384-wide model was built, then OOM-killed
        (lambda f: _edit_config(f, d_model=16384, n_heads=16, n_layers=24), "has shape .* but config.json implies"),
        (lambda f: _edit_config(f, n_layers=10**9), "more than 1,024"),
        (lambda f: _edit_config(f, norm_eps=-1.0), "norm_eps must be positive"),
        (lambda f: _poison(f / "model.safetensors"), "holds NaN or infinite values"),
        # a pre-split pattern that backtracks: it hung on a 41-character prompt
        (lambda f: _edit_tokenizer(f, pattern="(a|aa)+c"), "has a pre-split pattern other than GPT-2's"),
        (lambda f: _edit_tokenizer(f, pattern="(unclosed"), "has a pre-split pattern other than GPT-2's"),
    ],
)
def test_a_damaged_or_edited_checkpoint_is_one_line(gpt_checkpoint, tmp_path, capsys, damage, message):
    """Catches what issue 17 found: a truncated or garbage model.safetensors ending in safetensors' own
    SafetensorError traceback; an edited config.json ending in TypeError or ZeroDivisionError."""
    folder = tmp_path / "ckpt"
    shutil.copytree(gpt_checkpoint, folder)
    damage(folder)
    with pytest.raises(SystemExit) as stop:
        generate_command(["--checkpoint", str(folder), "--max-new-tokens", "2"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.startswith("lightbrain-generate: error: ") and err.count("\n") == 1, err
    assert re.search(message, err), err


def _poison(file):
    "Put a NaN in a weights file, as a diverged run would save it."
    from safetensors.torch import load_file, save_file

    state = load_file(file)
    next(iter(state.values())).view(-1)[0] = float("nan")
    save_file(state, file)


def _edit_tokenizer(folder, **values):
    data = json.loads((folder / "tokenizer.json").read_text())
    (folder / "tokenizer.json").write_text(json.dumps(data | values))


def test_a_pattern_you_trust_loads_and_splits_as_written(gpt_checkpoint, tmp_path):
    "Catches trust_pattern ignored: the tokenizer read back must split with the file's own pattern."
    shutil.copytree(gpt_checkpoint, tmp_path / "ckpt")
    _edit_tokenizer(tmp_path / "ckpt", pattern=r"\S+|\s+")  # words keep no leading space
    tok = BPETokenizer.load(tmp_path / "ckpt", trust_pattern=True)
    assert [tok.decode([i]) for i in tok.encode(" a")] == [" ", "a"]  # GPT-2's pattern would make one piece, " a"


def _edit_config(folder, **values):
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | values))


def test_commands_refuse_bad_options_and_settings_in_one_line(gpt_checkpoint, tmp_path, capsys, monkeypatch):
    """Catches: lightbrain-evaluate --batch-size -1 ending in a traceback (it did); sampling settings out of range;
    --resume with nothing to resume; an output folder that is a file; LIGHTBRAIN_DEVICE=cuda on a machine without
    CUDA ending in torch's 'Torch not compiled with CUDA enabled' traceback (it did)."""
    cases = [
        (
            evaluate_command,
            ["--checkpoint", str(gpt_checkpoint), "--batch-size", "-1"],
            "--batch-size must be at least 1",
        ),
        (generate_command, ["--checkpoint", str(gpt_checkpoint), "--temperature", "-1"], "temperature must be >= 0"),
        (generate_command, ["--checkpoint", str(gpt_checkpoint), "--top-p", "0"], "top_p must be in (0, 1]"),
        (generate_command, ["--checkpoint", str(gpt_checkpoint), "--top-k", "-2"], "top_k must be >= 1"),
        (generate_command, ["--checkpoint", str(gpt_checkpoint), "--max-new-tokens", "-5"], "max_new_tokens must"),
        (train_command, ["--quick", "--out", str(tmp_path / "none"), "--resume"], "nothing to resume"),
    ]
    (tmp_path / "file").write_text("not a folder")
    cases.append((train_command, ["--quick", "--out", str(tmp_path / "file"), "--max-steps", "1"], "file"))
    for command, argv, message in cases:
        with pytest.raises(SystemExit) as stop:
            command(argv)
        err = capsys.readouterr().err
        assert stop.value.code == 2 and message in err and "Traceback" not in err, (argv, err)
        assert err.strip().splitlines()[-1].startswith(("lightbrain-", "usage:")), err
    if not torch.cuda.is_available():
        monkeypatch.setenv("LIGHTBRAIN_DEVICE", "cuda")
        with pytest.raises(ValueError, match="LIGHTBRAIN_DEVICE=cuda but this PyTorch sees no cuda device"):
            get_device()


def test_both_training_commands_refuse_ckpt_dir_before_touching_the_run_folder(tmp_path, capsys):
    """Catches a training command that forgets to pass {"ckpt_dir": "--out"} to config_from_args (a TypeError
    traceback from `replace`), or one that checks it only after --overwrite has deleted the run in OUT. Since issue 36
    there is no --ckpt-dir option; a --config file can still name the field."""
    from leximind.app import train_command as leximind_train

    (tmp_path / "c.yaml").write_text(f"ckpt_dir: {tmp_path / 'x'}\n")
    for command, prog in ((train_command, "lightbrain-train"), (leximind_train, "leximind-train")):
        out = tmp_path / prog
        (out / "best").mkdir(parents=True)
        (out / "log.csv").write_text("step\n")  # an earlier run, which --overwrite would delete
        for given in (["--ckpt-dir", str(tmp_path / "x")], ["--config", str(tmp_path / "c.yaml")]):
            with pytest.raises(SystemExit) as stop:
                command(["--quick", "--out", str(out), "--overwrite", *given])
            err = capsys.readouterr().err
            message = "unrecognized arguments: --ckpt-dir" if given[0] == "--ckpt-dir" else "ckpt_dir is set by"
            assert stop.value.code == 2 and message in err, err
            assert (out / "log.csv").is_file() and (out / "best").is_dir()


def test_generate_seq2seq_refuses_impossible_settings():
    "Catches: more beams than tokens (topk fails deep in beam search) and ids from another tokenizer."
    model = T5(T5Config.tiny(vocab_size=50))
    ids = torch.tensor([[3, 4, 1]])
    with pytest.raises(ValueError, match="num_beams=60 is more than the 50 tokens"):
        generate_seq2seq(model, ids, num_beams=60)
    with pytest.raises(ValueError, match=r"ids outside 0\.\.49"):
        generate_seq2seq(model, torch.tensor([[3, 50, 1]]))


@pytest.fixture(scope="module")
def lexi_checkpoint(tmp_path_factory):
    "A LexiMind checkpoint as leximind-train writes it (untrained: these tests are about input, not answers)."
    folder = tmp_path_factory.mktemp("lexi")
    tokenizer = SentencePieceTokenizer(train_sentencepiece([ex["text"] for ex in course_data("emotion")["train"]], 600))
    torch.manual_seed(0)
    MultiTaskT5(T5(T5Config.tiny(vocab_size=tokenizer.vocab_size, context_length=64))).save(folder)
    tokenizer.save(folder)
    return folder


def test_the_leximind_command_answers_odd_text_in_one_line(lexi_checkpoint, capsys):
    """Catches: a lone surrogate (how Python reads command-line bytes that are not UTF-8) ending in a traceback; no
    summary invented for a one-word text (one was); a cut text reported as a raw Python warning with its source line
    (it was); notes on stdout, where they would break --json."""
    with pytest.raises(SystemExit) as stop:
        analyze_command(["--checkpoint", str(lexi_checkpoint), "caf\udce9"])
    err = capsys.readouterr().err
    assert (
        stop.value.code == 2 and err.startswith("leximind: error: analyze() needs valid text") and err.count("\n") == 1
    )
    analyze_command(["--checkpoint", str(lexi_checkpoint), "Hello", "--num-beams", "1"])
    out, err = capsys.readouterr()
    assert out.startswith("summary: (none)\n")
    assert err == "leximind: note: no summary: the text is too short to summarize (1 of at least 30 words)\n"
    analyze_command(["--checkpoint", str(lexi_checkpoint), "word " * 200, "--task", "topic", "--json"])
    out, err = capsys.readouterr()
    sp = spm.SentencePieceProcessor(model_file=str(lexi_checkpoint / "spiece.model"))  # the count, independently
    n = len(sp.encode(TASKS["topic"].prefix + "word " * 200)) + 1  # + end-of-sequence
    assert json.loads(out)["notes"] == [f"the text was cut: LexiMind reads 64 tokens and this one has {n}"]
    assert err == f"leximind: note: the text was cut: LexiMind reads 64 tokens and this one has {n}\n"
    for text in TEXTS[:4]:  # odd but valid text: answers, no error
        analyze_command(["--checkpoint", str(lexi_checkpoint), text, "--task", "emotion", "--json"])
        assert json.loads(capsys.readouterr().out)["emotion"]["label"]


def test_progress_bars_show_only_when_asked(capsys, monkeypatch):
    "Catches long work without a progress bar (BPE training had none), and a bar that cannot be turned off."
    train_bpe("some text to train on " * 50, 280, progress=True)
    assert "BPE merges" in capsys.readouterr().err
    train_bpe("some text to train on " * 50, 280, progress=False)
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("LIGHTBRAIN_PROGRESS", "1")
    assert not progress_bar(range(2)).disable
    monkeypatch.setenv("LIGHTBRAIN_PROGRESS", "0")
    assert progress_bar(range(2)).disable


def test_one_progress_rule_for_terminals_logs_notebooks_and_training(data_dir, tmp_path, capsys, monkeypatch):
    """Catches a bar in a redirected log, a bar filling a quick-mode notebook's stored outputs, no bar in a full-mode
    notebook cell that runs for minutes (issue 36: chapter 14's 1,000 articles showed none), and a training loop
    with its own rule (issue 36: its bar ignored LIGHTBRAIN_PROGRESS=0)."""
    monkeypatch.delenv("LIGHTBRAIN_PROGRESS", raising=False)
    kernel = sys.modules.get("ipykernel") or object()  # loaded here by nbval's plugin: not a notebook for these cases
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)  # a redirected log
    assert not show_progress()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a terminal
    assert show_progress() and not show_progress(False)
    monkeypatch.setitem(sys.modules, "ipykernel", kernel)  # a notebook
    for mode, shown in (("quick", False), ("full", True)):
        monkeypatch.setenv("LIGHTBRAIN_MODE", mode)
        assert show_progress() is shown and show_progress(True)
    monkeypatch.delitem(sys.modules, "ipykernel")
    run = ["--quick", "--data", str(data_dir), "--context-length", "16", "--n-layers", "1", "--batch-size", "2"]
    run += ["--max-steps", "3", "--eval-interval", "3", "--eval-iters", "1", "--tracker", "none"]
    for setting, shown in (("0", False), ("1", True)):
        monkeypatch.setenv("LIGHTBRAIN_PROGRESS", setting)
        train_command([*run, "--out", str(tmp_path / setting)])
        assert ("tok_s=" in capsys.readouterr().err) is shown, setting


def test_empty_training_text_is_refused():
    "Catches a tokenizer trained on nothing: 256 bytes and no word (both trainers refuse)."
    for text in ("", []):
        with pytest.raises(ValueError, match="empty"):
            train_bpe(text, 300)
    with pytest.raises(ValueError, match="empty"):
        train_sentencepiece(["", "  "], 100)


def test_a_model_meets_only_the_tokenizer_it_was_trained_with(data_dir, lexi_checkpoint, tmp_path, capsys):
    """Catches a model paired with another tokenizer of the same size, which reads token ids as other words without
    a word (issue 35 found it in a checkpoint's tokenizer.json and spiece.model, --tokenizer and --data; issue 17 in
    --resume). Before issue 35 only --resume was refused: generate, evaluate and the app answered, exit 0."""
    docs = load_pubmedqa("builtin")
    other = train_bpe([pubmedqa_text(ex) for ex in docs["train"].select(range(50))], 300, ["<|endoftext|>"])
    prepare(docs, other, tmp_path / "other", pubmedqa_text)
    run = tmp_path / "run"
    tiny = ["--quick", "--out", str(run), "--context-length", "16", "--n-layers", "1", "--batch-size", "2"]
    tiny += ["--max-steps", "2", "--eval-interval", "2", "--eval-iters", "1", "--tracker", "none"]
    train_command([*tiny, "--data", str(data_dir), "--progress", "false"])
    capsys.readouterr()
    refused = "is not the tokenizer the model in"
    code, err = _command_error(train_command, [*tiny, "--data", str(tmp_path / "other"), "--resume"], capsys)
    assert code == 2 and refused in err, err
    code, err = _command_error(
        evaluate_command, ["--checkpoint", str(run / "best"), "--data", str(tmp_path / "other")], capsys
    )
    assert code == 2 and refused in err, err
    code, err = _command_error(
        generate_command, ["--checkpoint", str(run / "best"), "--tokenizer", str(tmp_path / "other")], capsys
    )
    assert code == 2 and refused in err, err
    shutil.copy(tmp_path / "other" / "tokenizer.json", run / "best" / "tokenizer.json")  # swapped in the checkpoint
    code, err = _command_error(generate_command, ["--checkpoint", str(run / "best"), "--max-new-tokens", "2"], capsys)
    assert code == 2 and refused in err, err

    folder = tmp_path / "lexi"  # LexiMind: a checkpoint as leximind-train writes it, then another spiece.model
    shutil.copytree(lexi_checkpoint, folder)
    tokenizer = SentencePieceTokenizer.load(folder)
    run_files(tokenizer, "quick", {}, TrainConfig())(folder)
    analyze_command(["--checkpoint", str(folder), "--task", "topic", "Hello there"])  # its own tokenizer: answers
    capsys.readouterr()
    texts = [ex["text"] for ex in course_data("emotion")["train"]][:3000]
    swapped = SentencePieceTokenizer(train_sentencepiece(texts, 600))
    assert swapped.vocab_size == tokenizer.vocab_size and swapped.fingerprint != tokenizer.fingerprint
    swapped.save(folder)
    code, err = _command_error(analyze_command, ["--checkpoint", str(folder), "Hello there"], capsys)
    assert code == 2 and refused in err and err.count("\n") == 1, err


def test_run_json_records_local_data_by_absolute_path(lexi_checkpoint, tmp_path, monkeypatch):
    "Catches relative data paths in run.json, which made leximind-evaluate fail from another folder (issue 17)."
    monkeypatch.chdir(tmp_path)
    (tmp_path / "emotion.jsonl").write_text("")
    sources = {"emotion": "emotion.jsonl", "ag_news": None}
    run_files(SentencePieceTokenizer.load(lexi_checkpoint), "quick", sources, TrainConfig())(tmp_path)
    sources = json.loads((tmp_path / "run.json").read_text())["sources"]
    assert sources == {"emotion": str((tmp_path / "emotion.jsonl").resolve()), "ag_news": None}


def _command_error(command, argv, capsys) -> tuple[int, str]:
    "A command run in this process: its exit code and its error stream."
    with pytest.raises(SystemExit) as stop:
        command(argv)
    return stop.value.code, capsys.readouterr().err


def test_hostile_run_folders_and_config_files_are_refused_before_any_cost(data_dir, tmp_path, capsys):
    """Catches (issue 35, each seen on the code before it): a `last.tmp` symlink making --resume write outside the run
    folder; a trainer.pt at step -40 resuming with a negative learning rate (exit 0) or with fields missing ending in
    a KeyError; a YAML alias bomb in max_steps growing memory until the OOM killer; a FIFO as --config hanging."""
    from lightbrain.core import config_from_args

    out, outside = tmp_path / "run", tmp_path / "outside"
    outside.mkdir()
    base = ["--quick", "--data", str(data_dir), "--out", str(out), "--context-length", "32", "--n-layers", "1"]
    base += ["--d-model", "32", "--n-heads", "2", "--batch-size", "4", "--tracker", "none", "--progress", "false"]
    train_command([*base, "--max-steps", "2", "--eval-interval", "2", "--eval-iters", "1"])
    capsys.readouterr()
    (out / "last.tmp").symlink_to(outside, target_is_directory=True)
    code, err = _command_error(train_command, [*base, "--max-steps", "4", "--resume"], capsys)
    assert code == 2 and "symbolic links where a run writes its files (last.tmp)" in err, err
    assert not any(outside.iterdir())  # nothing written through the link
    (out / "last.tmp").unlink()
    state = torch.load(out / "last" / "trainer.pt", weights_only=True)
    torch.save(state | {"step": -40}, out / "last" / "trainer.pt")
    code, err = _command_error(train_command, [*base, "--max-steps", "4", "--resume"], capsys)
    assert code == 2 and "is at step -40, outside 0..max_steps (4)" in err, err
    torch.save({k: v for k, v in state.items() if k != "scaler"}, out / "last" / "trainer.pt")
    code, err = _command_error(train_command, [*base, "--max-steps", "4", "--resume"], capsys)
    assert code == 2 and "trainer.pt is damaged" in err, err
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("max_steps: [" + ", ".join(["&a [x, x, x, x, x, x, x, x, x]"] + ["*a"] * 8) + "]\n")
    code, err = _command_error(train_command, ["--config", str(bomb), "--out", str(tmp_path / "b")], capsys)
    assert code == 2 and "max_steps: a list where one int belongs" in err, err
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="is not a regular file"):
        config_from_args(argparse.Namespace(config=str(fifo)), (TrainConfig,))
    meta = json.loads((data_dir / "meta.json").read_text())
    edited = tmp_path / "edited"
    shutil.copytree(data_dir, edited)
    (edited / "meta.json").write_text(json.dumps(meta | {"dtype": "uint8"}))  # read back as valid, before
    with pytest.raises(ValueError, match="cannot hold this vocabulary's ids"):
        load_tokens(edited, "train")
    data_fifo = tmp_path / "texts"
    data_fifo.mkdir()
    os.mkfifo(data_fifo / "a.txt")
    with pytest.raises(ValueError, match="is not a regular file"):
        from lightbrain.data import check_text_file

        check_text_file(data_fifo / "a.txt")


def test_options_out_of_range_or_beyond_memory_are_one_line(gpt_checkpoint, lexi_checkpoint, tmp_path, capsys):
    """Catches (issue 35): --grad-clip -1 and --weight-decay -5 accepted; --temperature inf accepted;
    --batch-size 1000000 and leximind --max-new-tokens 100000000 OOM-killed instead of saying what they need;
    leximind-evaluate --out CHECKPOINT/config.json overwriting the checkpoint's own config (exit 0)."""
    from leximind.app import evaluate_command as leximind_evaluate

    out = ["--quick", "--out", str(tmp_path / "t")]
    cases = [
        (train_command, [*out, "--grad-clip", "-1"], "grad_clip must be 0 or more"),
        (train_command, [*out, "--weight-decay", "-5"], "weight_decay must be 0 or more"),
        (train_command, [*out, "--batch-size", "1000000"], "needs at least"),
        (generate_command, ["--checkpoint", str(gpt_checkpoint), "--temperature", "inf"], "must be >= 0 and finite"),
        (analyze_command, ["--checkpoint", str(lexi_checkpoint), "--max-new-tokens", "100000000", "a " * 40], "GiB"),
    ]
    before = (lexi_checkpoint / "config.json").read_bytes()
    cases.append(
        (
            leximind_evaluate,
            ["--checkpoint", str(lexi_checkpoint), "--out", str(lexi_checkpoint / "config.json")],
            "belongs to the checkpoint or run",
        )
    )
    for command, argv, message in cases:
        code, err = _command_error(command, argv, capsys)
        assert code == 2 and message in err and err.count("\n") <= 2, (argv, err)
    assert (lexi_checkpoint / "config.json").read_bytes() == before


def test_answers_name_the_one_thing_that_is_wrong(lexi_checkpoint, tmp_path, capsys):
    """Catches the misleading answers of this session's own sweep (issue 35): leximind --file /dev/zero OOM-killed
    (137) and a FIFO hung, both reading forever; --file FOLDER answered "[Errno 21] Is a directory"; --num-beams 0
    blamed --max-new-tokens too; --lr -1 answered in terms of min_lr; a bad temperature named an unset cap."""
    from leximind.multitask import task_probabilities

    os.mkfifo(tmp_path / "fifo")
    lexi = ["--checkpoint", str(lexi_checkpoint)]
    cases = [
        (analyze_command, [*lexi, "--file", "/dev/zero"], "/dev/zero is not a regular file (a pipe or a device)"),
        (analyze_command, [*lexi, "--file", str(tmp_path / "fifo")], "is not a regular file (a pipe or a device)"),
        (analyze_command, [*lexi, "--file", str(tmp_path)], f"{tmp_path} is a folder: give a file"),
        (analyze_command, [*lexi, "--file", str(tmp_path / "nope.txt")], "nope.txt: no such file"),
        (analyze_command, [*lexi, "--num-beams", "0", "hi"], "--num-beams must be at least 1, got 0"),
        (train_command, ["--quick", "--out", str(tmp_path / "t"), "--lr", "-1"], "lr must be positive and finite"),
    ]
    for command, argv, message in cases:
        code, err = _command_error(command, argv, capsys)
        assert code == 2 and message in err and err.count("\n") == 1, (argv, err)
    with pytest.raises(ValueError, match="^temperature must be positive and finite, got 0$"):
        task_probabilities({"a": 1}, temperature=0)


def test_api_misuse_is_answered_in_the_callers_terms():
    """Catches (issue 35): encode(None) failing inside the pre-split ("argument of type 'NoneType' is not
    iterable"), decode of a tensor answered "token id tensor(97) is not in the vocabulary", a string id reported as
    out of the vocabulary, and a float width answered "must be divisible by n_heads"."""
    tok = train_bpe(["a small corpus of words"], 260, ["<|endoftext|>"])
    with pytest.raises(TypeError, match="expected text \\(a str\\), got NoneType"):
        tok.encode(None)
    assert tok.decode(torch.tensor([97, 98])) == tok.decode([97, 98]) == "ab"
    with pytest.raises(TypeError, match="token ids must be ints, got 'a'"):
        tok.decode(["a"])
    with pytest.raises(TypeError, match="d_model must be an int, got 64.5"):
        GPTConfig.tiny(d_model=64.5)
