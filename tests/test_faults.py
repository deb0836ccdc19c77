"""Faults a long training run meets (issue 17): kill -9 at random moments, Ctrl-C, a second run into the same folder,
a diverging loss. Each runs `lightbrain-train` as a user would, in a subprocess, on a tiny model; the reference is
the same run left alone."""

import csv
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from lightbrain.cli import train_command

STEPS = 24
TINY = ["--context-length", "32", "--batch-size", "4", "--n-layers", "1", "--d-model", "32", "--n-heads", "2"]
QUIET = ["--tracker", "none", "--progress", "false"]


def train_args(data, out, *more):
    return [
        sys.executable,
        "-c",
        "import sys; from lightbrain.cli import train_command; train_command(sys.argv[1:])",
        "--quick",
        "--data",
        str(data),
        "--out",
        str(out),
        *TINY,
        *QUIET,
        "--eval-interval",
        "3",
        "--eval-iters",
        "2",
        "--log-interval",
        "1",
        *more,
    ]


def log_rows(out) -> list[tuple]:
    "log.csv's rows without the timing column, which differs between runs."
    with open(out / "log.csv", newline="") as f:
        return [(r["step"], r["loss"], r["lr"], r["val_loss"]) for r in csv.DictReader(f)]


def has_checkpoint(out) -> bool:
    return any((out / name / "trainer.pt").is_file() for name in ("last", "last.old"))


def test_kill_9_at_random_moments_then_resume_gives_the_uninterrupted_run(data_dir, tmp_path):
    """Catches: a checkpoint left unreadable by a kill (mid-write or between its renames), a resume that does not
    continue exactly (data order, dropout, optimizer), and log.csv rows duplicated or lost across resumes."""
    reference = subprocess.run(train_args(data_dir, tmp_path / "ref", "--max-steps", str(STEPS)), capture_output=True)
    assert reference.returncode == 0, reference.stderr[-2000:]
    out, rng, kills = tmp_path / "killed", random.Random(0), 0
    while kills < 4 and (logged := len(log_rows(out)) if (out / "log.csv").exists() else 0) < STEPS - 1:
        flag = "--resume" if has_checkpoint(out) else "--overwrite"
        proc = subprocess.Popen(train_args(data_dir, out, "--max-steps", str(STEPS), flag), stderr=subprocess.PIPE)
        target = min(logged + rng.randint(1, 4), STEPS - 1)  # a step this run reaches, then a moment after it
        while not (out / "log.csv").exists() or len(log_rows(out)) < target:
            assert proc.poll() is None, proc.stderr.read()[-2000:]
            time.sleep(0.01)
        deadline = time.time() + rng.uniform(0, 0.1)  # a step takes a few milliseconds here, a checkpoint as long:
        while time.time() < deadline and len(log_rows(out)) < target + 2:  # a random moment, at most two steps on
            time.sleep(0.001)  # (on a fast machine 0.1 s is many steps: the run would finish before its third kill)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    flag = "--resume" if has_checkpoint(out) else "--overwrite"
    final = subprocess.run(train_args(data_dir, out, "--max-steps", str(STEPS), flag), capture_output=True)
    assert final.returncode == 0, final.stderr[-2000:]
    assert kills >= 3, "too few kills to test anything: the run finished too soon"
    rows = log_rows(out)
    assert [int(r[0]) for r in rows] == list(range(1, STEPS + 1))  # every step once
    assert rows == log_rows(tmp_path / "ref")  # the same losses, bit for bit
    for name in ("best", "last"):
        got, want = (
            load_file(out / name / "model.safetensors"),
            load_file(tmp_path / "ref" / name / "model.safetensors"),
        )
        assert all(torch.equal(got[k], want[k]) for k in want)
    assert not any(p.is_dir() and p.name.endswith((".tmp", ".old")) for p in out.iterdir())  # checkpoint leftovers


@pytest.mark.parametrize(
    "signum, code, how",
    [
        (signal.SIGINT, 130, "interrupted"),
        (signal.SIGTERM, 143, "stopped by SIGTERM"),
        (signal.SIGHUP, 129, "stopped by SIGHUP"),
    ],
)
def test_a_stop_signal_saves_a_checkpoint_that_resumes_exactly(data_dir, tmp_path, signum, code, how):
    """Catches: Ctrl-C, SIGTERM (kill, timeout, docker stop, Slurm) or SIGHUP (a closed terminal) ending training
    without a checkpoint or with a traceback, a resume that does not continue exactly, or a log the resumed run
    duplicates."""
    out, run = tmp_path / "run", ["--max-steps", "60", "--eval-interval", "1"]  # a checkpoint a step: seconds in all
    proc = subprocess.Popen(
        train_args(data_dir, out, *run),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    while not (out / "log.csv").exists() or len(log_rows(out)) < 5:
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        time.sleep(0.05)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    step = torch.load(out / "last" / "trainer.pt", weights_only=True)["step"]
    assert proc.returncode == code, err[-2000:]
    assert err.strip() == (
        f"lightbrain-train: training {how} after step {step}: {out / 'last'} holds it, resume=True (--resume) continues"
    )
    assert [int(r[0]) for r in log_rows(out)] == list(range(1, step + 1))
    assert step < 60, "the run finished before the signal: nothing was tested"
    resumed = subprocess.run(train_args(data_dir, out, *run, "--resume"), capture_output=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert [int(r[0]) for r in log_rows(out)] == list(range(1, 61))
    if signum == signal.SIGTERM:  # and exactly: the same losses as a run never stopped
        whole = subprocess.run(train_args(data_dir, tmp_path / "whole", *run), capture_output=True)
        assert whole.returncode == 0, whole.stderr[-2000:]
        assert log_rows(out) == log_rows(tmp_path / "whole")


def test_a_second_run_into_a_training_folder_is_refused(data_dir, tmp_path):
    """Catches: two trainings into one --out both passing the "holds a run already" check and replacing each other's
    checkpoints, and --overwrite deleting the files of a run that is still training (two real processes)."""
    out = tmp_path / "run"
    first = subprocess.Popen(
        train_args(data_dir, out, "--max-steps", "100000", "--eval-interval", "3"), stderr=subprocess.PIPE, text=True
    )
    try:
        while not has_checkpoint(out):
            assert first.poll() is None, first.stderr.read()[-2000:]
            time.sleep(0.05)
        for flag in ("--overwrite", "--resume"):
            second = subprocess.run(train_args(data_dir, out, "--max-steps", "5", flag), capture_output=True, text=True)
            assert second.returncode == 2, second.stderr[-2000:]
            assert second.stderr.strip() == (
                f"lightbrain-train: error: {out} is in use by another training run (process {first.pid}): wait for it "
                "to end or stop it, or give another folder"
            )
        assert first.poll() is None and has_checkpoint(out)  # the first run trains on, its files in place
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
    assert first.returncode == 130


def test_token_files_rewritten_under_a_running_training_stop_it_in_one_line(data_dir, tmp_path):
    """Catches: a train.bin copied over (truncated and rewritten in place) while a run reads it through its memory map
    killing the run with SIGBUS, silently, with no message (issue 35); the run now stops with one line, exit 2, and
    its last checkpoint in place."""
    data, out = tmp_path / "data", tmp_path / "run"
    shutil.copytree(data_dir, data)
    run = subprocess.Popen(
        train_args(data, out, "--max-steps", "100000", "--eval-interval", "3"), stderr=subprocess.PIPE, text=True
    )
    while not has_checkpoint(out):
        assert run.poll() is None, run.stderr.read()[-2000:]
        time.sleep(0.05)
    train = data / "train.bin"
    with open(train, "r+b") as f:  # what `cp new.bin train.bin` does: the same file, cut, then written again
        f.truncate(train.stat().st_size // 4)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 2, f"exit {run.returncode}: {err[-2000:]}"
    assert err.strip() == (
        f"lightbrain-train: error: {train} changed while training: the last checkpoint is intact; resume with "
        "unchanged data, or prepare new data into a new folder"
    )
    assert (out / "last" / "trainer.pt").is_file()


def in_process(data, out, *more, capsys) -> tuple[int, str]:
    "`lightbrain-train` run in this process (no start-up time): its exit code and what it wrote to stderr."
    try:
        train_command(train_args(data, out, *more)[3:])  # the command's arguments, without `python -c CODE`
        code = 0
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def test_a_second_run_into_a_finished_run_is_refused_unless_told(data_dir, tmp_path, capsys):
    """Catches the bug issue 17 found: a second run into the same folder replaced the first run's better `best` and
    appended its steps to the first run's log.csv."""
    out = tmp_path / "run"
    assert in_process(data_dir, out, "--max-steps", "3", capsys=capsys)[0] == 0
    before = (out / "best" / "model.safetensors").read_bytes()
    assert in_process(data_dir, out, "--max-steps", "3", "--lr", "1e-2", capsys=capsys) == (
        2,
        f"lightbrain-train: error: {out} holds a run already: --resume continues it, --overwrite starts again\n",
    )
    assert (out / "best" / "model.safetensors").read_bytes() == before
    code, err = in_process(data_dir, out, "--resume", "--overwrite", capsys=capsys)
    assert code == 2 and "give one of them" in err
    assert in_process(data_dir, out, "--max-steps", "2", "--eval-interval", "2", "--overwrite", capsys=capsys)[0] == 0
    assert [int(r[0]) for r in log_rows(out)] == [1, 2]  # the new run's log alone
    assert torch.load(out / "last" / "trainer.pt", weights_only=True)["step"] == 2


def test_a_diverging_loss_is_one_line_and_keeps_the_last_good_checkpoint(data_dir, tmp_path, capsys):
    """Catches a NaN loss ending in a traceback (it used to: an uncaught FloatingPointError), and a checkpoint saved
    after the weights diverged (it was: the update at a finite loss made them infinite, and `last` kept them)."""
    out = tmp_path / "run"
    assert in_process(data_dir, out, "--max-steps", "3", capsys=capsys)[0] == 0
    # a learning rate of 1e6 without clipping: the first update throws the weights to inf or NaN
    args = ["--max-steps", "30", "--lr", "1e6", "--min-lr", "1e6", "--warmup-steps", "0", "--grad-clip", "0"]
    args += ["--eval-interval", "1"]  # the diverged weights meet an evaluation and a checkpoint save at once
    code, err = in_process(data_dir, out, *args, "--resume", capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("lightbrain-train: error: the "), err[-2000:]
    assert "training stopped before" in err and f"the last good checkpoint is {out / 'last'}" in err
    assert torch.load(out / "last" / "trainer.pt", weights_only=True)["step"] >= 3
    assert all(t.isfinite().all() for t in load_file(out / "last" / "model.safetensors").values())
