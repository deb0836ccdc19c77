"Shared helpers for the benchmarks: the hardware line, GPU peaks, best-of timing and a plain-text table."

import os
import platform
import re
import time
from pathlib import Path

import torch

from lightbrain.core import cpu_name

SHARED_DATA = Path(os.environ.get("LIGHTBRAIN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def hardware() -> str:
    "One line naming the CPU (and GPU if any) and the library versions the numbers were measured with."
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return f"{cpu_name()}, {os.cpu_count()} cores, {gpu}; Python {platform.python_version()}, torch {torch.__version__}"


PEAK_TFLOPS = {  # dense fp16/bf16 tensor-core peaks from the datasheets (SXM parts for H100/H200)
    "T4": 65,
    "L4": 121,
    "A10": 125,
    "A100": 312,
    "L40S": 362,
    "H100": 989,
    "H200": 989,
}


def peak_tflops(device: torch.device) -> float | None:
    "The GPU's dense fp16/bf16 peak from PEAK_TFLOPS (None on a CPU or an unlisted GPU)."
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else ""
    return next((v for k, v in PEAK_TFLOPS.items() if re.search(rf"\b{k}\b", name)), None)


def best_time(fn, repeat: int = 3) -> float:
    "The fastest of `repeat` wall-clock timings of `fn()`, in seconds."
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def table(header: list[str], rows: list[list]) -> str:
    "A markdown table (readable as plain text too)."
    cells = [header] + [[f"{c:.3g}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"
    return "\n".join(
        [line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in cells[1:]]
    )
