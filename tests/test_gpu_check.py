"""tools/gpu_check.py, the script to run first when a GPU is lent: its dry run must work on a CPU, and on a played T4
(tools/fake_t4.py) it must take the T4's path (fp16 with loss scaling, no bf16) with every model on the GPU."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import gpu_check  # noqa: E402
from fake_t4 import fake_t4  # noqa: E402


def report(folder: Path) -> dict:
    (path,) = folder.glob("gpu_check-*.json")
    assert path.with_suffix(".md").is_file()
    return json.loads(path.read_text())


def test_dry_run_on_the_cpu_writes_both_reports(tmp_path, capsys):
    """Catches a check that no longer runs against today's library (it is only ever run on a GPU, where a crash costs
    device minutes), a row missing, or a non-finite loss in the course's own models."""
    assert gpu_check.main(["--dry-run", "--out", str(tmp_path)]) == 0
    r = report(tmp_path)
    assert r["dry_run"] and [row["dtype"] for row in r["rows"]] == ["fp32", "fp32", "fp32"]
    assert all(row["non_finite_losses"] == 0 for row in r["rows"][:2])
    assert r["rows"][1]["wo_output_dtype"] == "torch.float32" and r["rows"][2]["new_tokens_per_s"] > 0
    table = capsys.readouterr().out
    assert table.count("\n| ") == 4  # the header and three rows


def test_dry_run_on_a_played_t4_takes_the_t4_path(tmp_path):
    """Catches a model or batch left on the CPU (PyTorch's device error on a GPU), bf16 tried on a T4, T5's `wo` run
    in fp16 under autocast (it overflows in trained T5s), and MFU not computed against the T4's peak."""
    with fake_t4():
        assert gpu_check.main(["--dry-run", "--out", str(tmp_path)]) == 0
    r = report(tmp_path)
    assert r["environment"]["device"] == "Tesla T4" and r["environment"]["peak_tflops_fp16_bf16"] == 65
    assert [row["dtype"] for row in r["rows"]] == ["fp16", "fp16", "fp16"] and "bf16" in r["skipped"]
    assert r["rows"][1]["wo_output_dtype"] == "torch.float32"
    assert r["rows"][0]["mfu"] is not None and r["rows"][0]["peak_memory_gb"] is not None


def test_without_a_gpu_it_says_so_in_one_line(tmp_path, capsys):
    "Catches a run without --dry-run on a CPU that spends minutes on full sizes instead of stopping at once."
    with pytest.raises(SystemExit) as stop:
        gpu_check.main(["--out", str(tmp_path)])
    assert stop.value.code == 2 and "no CUDA GPU here" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
