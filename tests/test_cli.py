"""lightbrain.cli and leximind.app: the shared parser and error wrapper of lightbrain.core (against argparse's own
behaviour and the config dataclasses), and every LightBrain command run as a user would, in a subprocess."""

import csv
import io
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import fields

import pytest
import torch
import yaml

import lightbrain
from conftest import ROOT
from lightbrain.cli import PRESETS, train_command
from lightbrain.core import command, command_parser, config_from_args, parse_value, writable_file
from lightbrain.data import course_data, load_meta, load_pubmedqa, pubmedqa_text
from lightbrain.model import GPT, GPTConfig
from lightbrain.tokenizer import save_tokenizer, train_bpe
from lightbrain.train import TrainConfig


def run(function: str, *args, cwd=None, module="lightbrain.cli"):
    "Run a command function in a fresh Python, as its console script would."
    code = f"import sys; from {module} import {function}; {function}(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd)


def assert_user_error(result, prog: str, message: str):
    "A user error: exit code 2, one line on stderr naming the command, no traceback."
    assert result.returncode == 2, (result.returncode, result.stderr[-1000:])
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith(f"{prog}: error:"), result.stderr[-1000:]
    assert message in result.stderr, result.stderr


def test_command_turns_user_errors_into_one_line_and_keeps_bugs_loud(capsys):
    "Catches a wrapper that swallows real bugs (TypeError) or exits with another code or a traceback on bad input."

    @command("demo")
    def fails(argv):
        raise argv[0]

    with pytest.raises(SystemExit) as exit_info:
        fails([FileNotFoundError("no such file: x.json")])
    assert exit_info.value.code == 2 and capsys.readouterr().err == "demo: error: no such file: x.json\n"
    with pytest.raises(TypeError):
        fails([TypeError("a bug")])


def test_help_lists_every_field_with_each_presets_value(capsys):
    "Catches a config field without an option, or help that shows the dataclass default instead of the presets' values."
    parser = command_parser("lightbrain-train", "train", PRESETS)
    text = parser.format_help()
    for cls in (TrainConfig, GPTConfig):
        for f in fields(cls):
            assert "--" + f.name.replace("_", "-") in text, f.name
    assert "default: quick 800, full 5000" in text.replace("\n", " ").replace("  ", " ")  # max_steps in each preset
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--version"])
    assert exit_info.value.code == 0 and lightbrain.__version__ in capsys.readouterr().out


OUT_SETS = {"ckpt_dir": "--out"}  # what both training commands pass: --out sets ckpt_dir


def test_options_and_yaml_become_typed_config_values(tmp_path):
    "Catches strings left untyped, a YAML value winning over the command line, or an unknown YAML field accepted."
    parser = command_parser("x", "x", PRESETS)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"lr": 0.5, "n_layers": 3, "decay_steps": 7}))
    args = parser.parse_args(
        ["--config", str(tmp_path / "c.yaml"), "--lr", "1e-3", "--compile", "yes", "--decay-steps", "none"]
    )
    assert config_from_args(args, tuple(PRESETS)) == {"lr": 1e-3, "n_layers": 3, "decay_steps": None, "compile": True}
    assert parse_value("false", bool) is False and parse_value("3", int | None) == 3
    with pytest.raises(ValueError):
        parse_value("maybe", bool)
    (tmp_path / "bad.yaml").write_text("n_layer: 3\n")  # GPT-2's name for n_layers
    with pytest.raises(ValueError, match="unknown fields"):
        config_from_args(parser.parse_args(["--config", str(tmp_path / "bad.yaml")]), tuple(PRESETS))
    (tmp_path / "text.yaml").write_text("lr: 1e-3\nbatch_size: '4'\n")  # YAML reads 1e-3 (no dot) as a string
    assert config_from_args(parser.parse_args(["--config", str(tmp_path / "text.yaml")]), tuple(PRESETS)) == {
        "lr": 1e-3,
        "batch_size": 4,
    }
    for bad, message in [
        ("batch_size: 2.5", "batch_size: 2.5 is not a valid int"),
        ("weight_decay: abc", "weight_decay: 'abc' is not a valid float"),
        ("lr: null", "lr: None is not a valid float"),
        ("ckpt_dir: elsewhere", "set by the command's --out"),  # it crashed with a TypeError traceback
    ]:
        (tmp_path / "bad.yaml").write_text(bad + "\n")
        with pytest.raises(ValueError, match=re.escape(message)):
            config_from_args(parser.parse_args(["--config", str(tmp_path / "bad.yaml")]), tuple(PRESETS), OUT_SETS)
    with pytest.raises(ValueError, match="set by the command's --out"):  # the option too: it crashed with a TypeError
        config_from_args(parser.parse_args(["--ckpt-dir", "elsewhere"]), tuple(PRESETS), OUT_SETS)


def test_prepare_command(data_dir, tmp_path):
    tok = train_bpe(
        [pubmedqa_text(ex) for ex in load_pubmedqa("builtin")["train"].select(range(200))], 600, ["<|endoftext|>"]
    )
    save_tokenizer(tok, tmp_path / "tok")
    ok = run(
        "prepare_command",
        "--source",
        "builtin",
        "--tokenizer",
        str(tmp_path / "tok"),
        "--out",
        str(tmp_path / "out"),
    )
    assert ok.returncode == 0 and "wrote" in ok.stdout, ok.stderr
    assert load_meta(tmp_path / "out")["tokenizer"]["vocab_size"] == tok.vocab_size
    assert_user_error(
        run("prepare_command", "--source", "builtin", "--tokenizer", "nope.json", "--out", str(tmp_path / "x")),
        "lightbrain-prepare",
        "nope.json",
    )


def test_train_evaluate_and_generate_commands(data_dir, tmp_path):
    out = tmp_path / "run"
    common = [
        "--quick",
        "--data",
        str(data_dir),
        "--out",
        str(out),
        "--context-length",
        "32",
        "--batch-size",
        "4",
        "--n-layers",
        "1",
        "--tracker",
        "none",
        "--eval-interval",
        "10",
    ]
    ok = run("train_command", *common, "--max-steps", "20", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "validation loss" in ok.stdout and "sample from" in ok.stdout
    assert GPT.load(out / "best").config.n_layers == 1 and (out / "best" / "tokenizer.json").exists()
    ok_log = (out / "log.csv").read_text()
    assert "training" not in ok.stderr  # stderr is no terminal: no bar, unless LIGHTBRAIN_PROGRESS=1 asks for one
    os.environ["LIGHTBRAIN_PROGRESS"] = "1"
    try:
        again = run("train_command", *common, "--max-steps", "30", "--resume", cwd=tmp_path)
    finally:
        del os.environ["LIGHTBRAIN_PROGRESS"]
    assert again.returncode == 0 and "20/30" in again.stderr and "30/30" in again.stderr, again.stderr[-2000:]
    assert (out / "log.csv").read_text().startswith(ok_log)  # the resumed run kept the first run's rows
    ev = run("evaluate_command", "--checkpoint", str(out / "best"), "--json")
    result = json.loads(ev.stdout)
    assert (
        ev.returncode == 0
        and result["val_tokens"] > 0
        and math.isclose(result["val_ppl"], math.exp(result["val_loss"]))
    )
    gen = run(
        "generate_command",
        "--checkpoint",
        str(out / "best"),
        "--prompt",
        "Question:",
        "--max-new-tokens",
        "5",
        "--seed",
        "0",
    )
    assert gen.returncode == 0 and gen.stdout.strip(), gen.stderr
    assert (
        "research and teaching only" in gen.stderr and "research" not in gen.stdout
    )  # the notice, apart from the text
    assert_user_error(
        run("generate_command", "--checkpoint", str(out / "best"), "--top-p", "2"), "lightbrain-generate", "top_p"
    )
    assert_user_error(
        run("generate_command", "--checkpoint", str(tmp_path / "nope")), "lightbrain-generate", "nope: no such folder"
    )
    assert_user_error(
        run("train_command", "--quick", "--out", str(tmp_path / "x"), "--data", str(tmp_path / "missing")),
        "lightbrain-train",
        "no prepared tokens",
    )
    assert_user_error(
        run(
            "train_command",
            "--quick",
            "--out",
            str(tmp_path / "x"),
            "--data",
            str(data_dir),
            "--context-length",
            "64",
            "--n-layers",
            "1",
            "--max-steps",
            "1",
            "--vocab-size",
            "100",
        ),
        "lightbrain-train",
        "vocabulary",
    )
    for args, message in [
        (["--lr", "fast"], "invalid float value: 'fast'"),
        (["--nonsense", "1"], "unrecognized arguments"),
    ]:
        bad = run(
            "train_command", "--quick", "--out", str(tmp_path / "x"), *args
        )  # argparse's own errors: usage, then one line
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr, (
            args,
            bad.stderr[-500:],
        )
    shutil.copytree(out / "best", tmp_path / "moved")
    (tmp_path / "moved" / "run.json").unlink()
    assert_user_error(
        run("evaluate_command", "--checkpoint", str(tmp_path / "moved")),
        "lightbrain-evaluate",
        "does not record its data",
    )


@pytest.mark.parametrize(
    "module, function, prog",
    [
        ("lightbrain.cli", "prepare_command", "lightbrain-prepare"),
        ("lightbrain.cli", "train_command", "lightbrain-train"),
        ("lightbrain.cli", "evaluate_command", "lightbrain-evaluate"),
        ("lightbrain.cli", "generate_command", "lightbrain-generate"),
        ("leximind.app", "train_command", "leximind-train"),
        ("leximind.app", "evaluate_command", "leximind-evaluate"),
        ("leximind.app", "analyze_command", "leximind"),
    ],
)
def test_every_command_has_version(module, function, prog):
    "Catches a command built without the shared parser (no --version, or another program name)."
    result = run(function, "--version", module=module)
    assert result.returncode == 0 and result.stdout.strip() == f"{prog} {lightbrain.__version__}", (
        result.stdout + result.stderr
    )


def _launch(prog: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    "Run a console script as installed (its entry point, lightbrain._commands.main), reporting whether torch loaded."
    code = (
        "import sys; from lightbrain._commands import main; sys.argv = sys.argv[1:]\n"
        "try:\n    main()\n"
        "finally:\n    print('torch loaded' if 'torch' in sys.modules else 'no torch', file=sys.stderr)"
    )
    return subprocess.run(
        [sys.executable, "-c", code, prog, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )


def test_help_and_version_answer_without_importing_torch_and_match_the_parsers(monkeypatch, capsys):
    """Catches --help or --version importing the command's module (torch alone takes seconds: issue 36 measured
    11-17 s per --help), a stored help text gone stale after a parser changed, and an entry point for a command
    that does not exist. The time each takes is measured in bench/commands.py."""
    import importlib

    from lightbrain._commands import COMMANDS, HELP

    stored = json.loads(HELP.read_text())
    assert set(stored) == set(COMMANDS)
    monkeypatch.setenv("COLUMNS", "100")
    for prog, (module, function) in COMMANDS.items():
        with pytest.raises(SystemExit):
            getattr(importlib.import_module(module), function)(["--help"])
        assert capsys.readouterr().out.split() == stored[prog].split(), f"{prog}: run python tools/export.py"
    for prog in COMMANDS:
        shown = _launch(prog, "--help")
        assert shown.returncode == 0 and shown.stdout == stored[prog] and shown.stderr == "no torch\n", shown.stderr
        version = _launch(prog, "--version")
        assert version.stdout == f"{prog} {lightbrain.__version__}\n" and version.stderr == "no torch\n"
    ran = _launch("lightbrain-train", "--max-steps", "0")  # anything else runs the command itself
    assert "max_steps must be at least 1" in ran.stderr and ran.stderr.endswith("torch loaded\n")


def test_fixed_values_are_listed_and_options_that_can_only_be_refused_are_gone():
    """Catches --dtype and --norm listing no choices, a bad choice reported after the work began, and --ckpt-dir in
    the training commands' help (issue 36: listed, then always refused, since --out sets it)."""
    from lightbrain._commands import HELP

    stored = json.loads(HELP.read_text())
    for prog in ("lightbrain-train", "leximind-train"):
        assert "--ckpt-dir" not in stored[prog] and "--dtype {auto,fp32,bf16,fp16}" in stored[prog]
        assert "--tracker {none,tensorboard,mlflow}" in stored[prog]
    assert "--norm {layernorm,rmsnorm}" in stored["lightbrain-train"]
    assert "--pooling {mean,first}" in stored["leximind-train"]


def test_a_bad_value_exits_before_any_data_is_prepared(tmp_path):
    """Catches values checked only after the data work: lightbrain-train --max-steps 0 prepared PubMedQA into
    OUT/data first (and leximind-train read and tokenized its tasks) before saying no (issue 36)."""
    for prog in ("lightbrain-train", "leximind-train"):
        out = tmp_path / prog
        ran = _launch(prog, "--quick", "--out", str(out), "--max-steps", "0", env={"LIGHTBRAIN_PROGRESS": "0"})
        assert ran.returncode == 2 and "error: max_steps must be at least 1, got 0" in ran.stderr, ran.stderr
        assert ran.stdout == "" and not out.exists(), ran.stdout


# --- LexiMind --------------------------------------------------------------------------------------------------------


def run_lexi(module, function, *args, cwd):
    return run(function, *args, cwd=cwd, module=module)


def test_leximind_commands(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    train = ["--quick", "--out", str(out), "--eval-interval", "20", "--tracker", "none", "--progress", "false"]
    code = "import sys; from leximind.app import train_command; train_command(sys.argv[1:])"
    # Ctrl-C a few steps in (issue 17): a checkpoint of the steps done, one line, exit code 130; then resume to 20
    interrupted = subprocess.Popen(
        [sys.executable, "-c", code, *train, "--max-steps", "1000", "--log-interval", "1"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    while not (out / "log.csv").exists() or len((out / "log.csv").read_text().splitlines()) < 4:
        assert interrupted.poll() is None, interrupted.stderr.read()[-2000:]
        time.sleep(0.05)
    interrupted.send_signal(signal.SIGINT)
    err = interrupted.communicate(timeout=300)[1]
    step = torch.load(out / "last" / "trainer.pt", weights_only=True)["step"]
    assert interrupted.returncode == 130 and err.strip().splitlines()[-1] == (
        f"leximind-train: training interrupted after step {step}: {out / 'last'} holds it, resume=True (--resume) "
        "continues"
    ), err[-2000:]
    trained = run_lexi(
        "leximind.app", "train_command", *train, "--max-steps", "20", "--log-interval", "1", "--resume", cwd=tmp_path
    )
    assert trained.returncode == 0, trained.stderr[-2000:]
    with open(out / "log.csv", newline="") as f:
        assert [int(row["step"]) for row in csv.DictReader(f)] == list(range(1, 21))  # each step once
    assert {"model.safetensors", "spiece.model", "run.json", "trainer.pt"} <= {p.name for p in (out / "best").iterdir()}
    report_file = tmp_path / "report.json"
    evaluated = run_lexi(
        "leximind.app",
        "evaluate_command",
        "--checkpoint",
        str(out / "best"),
        "--out",
        str(report_file),
        "--limit",
        "20",
        "--baselines",
        cwd=tmp_path,
    )
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    report = json.loads(report_file.read_text())
    assert (
        report["split"] == "test"
        and report["emotion"]["n"] == report["topic"]["n"] == 20
        and report["summarize"]["n"] == 19
    )  # 19 test articles
    assert {"rouge1", "rouge2", "rougeL", "rougeLsum"} <= set(report["summarize"])
    assert {"accuracy", "macro_f1", "per_class", "confusion_matrix"} <= set(report["emotion"])
    assert (
        set(report["baselines"]["topic"]) == {"majority class", "TF-IDF + logistic regression"}
        and "lead-3" in report["baselines"]["summarize"]
    )
    (tmp_path / "article.txt").write_text(
        "Maria Walker, a 34-year-old nurse from Leeds, won the city marathon on Sunday."
    )
    from leximind.app import analyze_command, evaluate_command  # in this process: no subprocess start-up time

    for source in (["i feel so relaxed after work today"], ["--file", str(tmp_path / "article.txt")]):
        analyze_command(["--checkpoint", str(out / "best"), "--json", *source])
        assert set(json.loads(capsys.readouterr().out)) == {"summary", "emotion", "topic", "notes"}
    monkeypatch.setattr(sys, "stdin", io.StringIO("i feel so relaxed after work today"))  # '-': standard input
    analyze_command(["--checkpoint", str(out / "best"), "--json", "--task", "emotion", "-"])
    assert set(json.loads(capsys.readouterr().out)) == {"emotion", "notes"}
    piped = subprocess.run(  # a real pipe and nothing on the command line: the text comes from it (issue 17)
        [sys.executable, "-c", "import sys; from leximind.app import analyze_command; analyze_command(sys.argv[1:])"]
        + ["--checkpoint", str(out / "best"), "--json", "--task", "emotion"],
        input="i feel so relaxed after work today",
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert piped.returncode == 0 and set(json.loads(piped.stdout)) == {"emotion", "notes"}, piped.stderr[-2000:]
    evaluate_command(["--checkpoint", str(out / "best"), "--limit", "3", "--json"])  # --json prints, as lightbrain's
    printed = json.loads(capsys.readouterr().out)
    assert printed["split"] == "test" and printed["emotion"]["n"] == 3

    analyze_command(["--checkpoint", str(out / "best"), "hello there"])
    printed = capsys.readouterr()
    assert printed.out.startswith("summary: (none)\n") and "emotion:" in printed.out and "topic:" in printed.out
    assert printed.err == "leximind: note: no summary: the text is too short to summarize (2 of at least 30 words)\n"
    analyze_command(["--checkpoint", str(out / "best"), "hello there", "--task", "topic", "--num-beams", "1"])
    assert capsys.readouterr().out.startswith("topic:")
    for bad, message in [
        (["--checkpoint", str(out / "best"), ""], "non-empty text"),
        (["--checkpoint", str(tmp_path / "none"), "hi"], "none: no such folder (train a model with leximind-train)"),
        (["--checkpoint", str(out / "best"), "--file", str(tmp_path / "missing.txt")], "missing.txt: no such file"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            analyze_command(bad)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and message in err and err.startswith("leximind: error:"), err


def test_train_on_a_single_ag_news_csv(tmp_path):
    """AG News's original test.csv, the only file many users have, is split three ways and trains (it used to end in
    KeyError: 'train')."""
    ag = course_data("ag_news")["train"]  # all 7,600 items of the original test.csv
    with open(tmp_path / "test.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([[ex["label"] + 1, *ex["text"].split(" ", 1)] for ex in ag])
    out = tmp_path / "run"
    trained = run_lexi(
        "leximind.app",
        "train_command",
        "--quick",
        "--ag-news",
        str(tmp_path / "test.csv"),
        "--out",
        str(out),
        "--max-steps",
        "10",
        "--eval-interval",
        "10",
        "--tracker",
        "none",
        "--progress",
        "false",
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert (
        "7,600 documents in a single split ('test'), divided by a hash" in trained.stdout
        and (out / "best" / "model.safetensors").is_file()
    )


def test_output_paths_are_checked_before_the_work(tmp_path, capsys):
    """Catches `leximind-evaluate --out PATH` checking PATH only after the whole evaluation, losing its results to a
    traceback (issue 17): a bad path is refused first, even before a missing checkpoint is noticed."""
    from leximind.app import evaluate_command

    (tmp_path / "afile").write_text("x")
    for path, message in [
        (tmp_path, "is a folder"),
        (tmp_path / "afile" / "deeper" / "r.json", "afile is a file, not a folder"),
    ]:
        with pytest.raises(ValueError, match=message):
            writable_file(path)
        with pytest.raises(SystemExit) as exit_info:
            evaluate_command(["--checkpoint", str(tmp_path / "none"), "--out", str(path)])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and err.startswith("leximind-evaluate: error:") and message in err, err
    assert writable_file(tmp_path / "new" / "r.json") == tmp_path / "new" / "r.json" and (tmp_path / "new").is_dir()
    with pytest.raises(SystemExit):
        evaluate_command(["--checkpoint", str(tmp_path), "--limit", "-1"])
    assert "at least 1" in capsys.readouterr().err


def test_chapter_08_and_lightbrain_train_quick_train_the_same_model(tmp_path, capsys, monkeypatch):
    """Catches the chapter and its command drifting apart (they used to train two different quick models): the
    command's quick model has as many parameters as the one in chapter 08's stored run, and its preset as many steps."""
    nb = json.loads((ROOT / "nbs" / "08_lightbrain_pubmed.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"])
    parameters, steps = re.search(r"quick preset: ([\d,]+) parameters; ([\d,]+) steps", printed).groups()
    monkeypatch.chdir(tmp_path)
    train_command(["--quick", "--max-steps", "1", "--eval-iters", "1", "--tracker", "none", "--out", "run"])
    assert f"training {parameters} parameters" in capsys.readouterr().out
    assert f"{PRESETS[TrainConfig]['quick'].max_steps:,}" == steps
