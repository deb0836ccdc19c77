"""The two install sizes (issue 36): `pip install lightbrain-leximind` brings only what the packages' modules import,
enough to run both models and both tokenizers; the `[course]` extra brings what the notebooks import; a function that
needs a missing extra says, in one line, which extra to install.

The clean environment is built offline: a virtual environment without the system's packages, the wheel installed
into it without dependencies, and beside it only the distributions the wheel's own requirements reach (linked from
this environment). `pip check` in it then confirms that they satisfy the wheel, and nothing else is importable."""

import importlib.metadata as md
import json
import os
import re
import subprocess
import sys

import pytest
from packaging.requirements import Requirement

from conftest import ROOT, shared

COURSE_ONLY = ["datasets", "transformers", "matplotlib", "IPython", "ipywidgets", "tensorboard", "sklearn", "nltk"]


def reached(names: list[str], extras: tuple[str, ...] = ()) -> dict[str, md.Distribution]:
    "The installed distributions that `names` (with `extras`) require, directly or through others, by name."
    seen, todo = {}, [(name, extras) for name in names]
    while todo:
        name, wanted = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        seen[key] = dist = md.distribution(name)
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", *wanted)):
                todo.append((req.name, tuple(req.extras)))
    return seen


def own_requirements(extra: str | None = None) -> list[str]:
    "The course package's requirements (from pyproject.toml, as installed): the library's, or one extra's."
    reqs = [Requirement(r) for r in md.distribution("lightbrain-leximind").requires]
    env = {"extra": extra or ""}
    return [
        r.name for r in reqs if (r.marker is None) == (extra is None) and (r.marker is None or r.marker.evaluate(env))
    ]


@pytest.fixture(scope="module")
def library_venv(tmp_path_factory):
    "A virtual environment holding the wheel and only what its requirements (no extras) reach: its python."
    tmp = tmp_path_factory.mktemp("install")
    wheel = tmp / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(wheel)],
        check=True,
        capture_output=True,
    )
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True
    ).stdout.strip()
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", *map(str, wheel.glob("*.whl"))], check=True
    )
    for dist in reached(own_requirements()).values():
        for top in {f.parts[0] for f in dist.files or [] if f.parts[0] not in ("..", "__pycache__")}:
            target = os.path.join(site, top)
            if not os.path.lexists(target):
                os.symlink(dist.locate_file(top), target)
    return python


def test_the_library_install_runs_both_models_and_both_tokenizers(library_venv):
    """Catches a module that imports a course-only library at import time (the library install would fail on
    `import`), and a requirement missing from the library's list (pip check fails)."""
    check = subprocess.run([library_venv, "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    code = """
import importlib, importlib.util, json, pkgutil, sys
import torch
import leximind, lightbrain
absent = [m for m in %r if importlib.util.find_spec(m) is not None]
modules = [m.name for p in (lightbrain, leximind) for m in pkgutil.walk_packages(p.__path__, p.__name__ + ".")]
for name in modules:
    importlib.import_module(name)
from lightbrain.model import GPT, GPTConfig
from lightbrain.tokenizer import load_tokenizer, train_bpe
from lightbrain.cli import COURSE_MODEL
from leximind.app import LexiMind
gpt = GPT.load(COURSE_MODEL)
bpe = load_tokenizer(COURSE_MODEL)
ids = torch.tensor([bpe.encode("Does aspirin reduce the risk of stroke?")])
logits, _ = gpt(ids)
mine = train_bpe("a small text to train a small tokenizer on " * 20, 280)
gpt2 = load_tokenizer("gpt2")
app = LexiMind.load(num_beams=1)
answer = app.analyze("The team won the final match of the season after a late goal.", ["topic"])
print(json.dumps({"absent": absent, "modules": len(modules), "logits": list(logits.shape),
    "bpe": mine.decode(mine.encode("a small text")), "gpt2": gpt2.encode("hello world"),
    "t5": app.tokenizer.vocab_size, "topic": answer["topic"]["label"]}))
""" % (COURSE_ONLY,)
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(shared("gpt2", "tiktoken_cache"))}
    ran = subprocess.run([library_venv, "-c", code], capture_output=True, text=True, env=env, cwd=library_venv.parent)
    assert ran.returncode == 0, ran.stderr[-3000:]
    result = json.loads(ran.stdout.splitlines()[-1])
    assert result["absent"] == [], f"the clean environment is not clean: {result['absent']}"
    assert result["modules"] >= 15 and result["logits"][-1] == 2048
    assert result["bpe"] == "a small text" and result["gpt2"] == [31373, 995]  # tiktoken's ids for "hello world"
    assert result["t5"] == 8100 and result["topic"] in ("World", "Sports", "Business", "Sci/Tech")


def test_a_missing_extra_is_one_line_naming_it(library_venv, tmp_path):
    """Catches a traceback (ModuleNotFoundError from deep inside a loader) where the library install meets a
    function of the course: a command exits 2 with one line, the Python API raises one line."""
    prepare = library_venv.parent / "lightbrain-prepare"
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(shared("gpt2", "tiktoken_cache"))}
    argv = [prepare, "--source", "builtin", "--out", str(tmp_path / "d")]
    ran = subprocess.run(argv, capture_output=True, text=True, env=env)
    assert ran.returncode == 2, ran.stderr[-2000:]
    assert (
        ran.stderr
        == "lightbrain-prepare: error: datasets is not installed: pip install 'lightbrain-leximind[course]'\n"
    )
    code = "from lightbrain.train import plot_log\nplot_log([{'step': 1, 'loss': 2.0, 'lr': 0.1}])"
    ran = subprocess.run([library_venv, "-c", code], capture_output=True, text=True)
    assert ran.stderr.strip().splitlines()[-1] == (
        "ModuleNotFoundError: matplotlib is not installed: pip install 'lightbrain-leximind[course]'"
    )


def test_the_course_extra_brings_every_notebook_import():
    """Catches a notebook importing a library that neither the library install nor [course] brings (it would fail in
    Colab, whose install cell installs [course]), and a course-only library in the library's requirements."""
    library, course = reached(own_requirements()), reached(own_requirements("course"))
    names = md.packages_distributions()
    missing = set()
    for nb in sorted((ROOT / "nbs").glob("*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            for top in re.findall(r"^(?:from|import) (\w+)", "".join(cell["source"]), re.M):  # top-level imports
                if top in sys.stdlib_module_names or top in ("lightbrain", "leximind", "google"):
                    continue  # google: Colab's own, imported only in Colab
                dists = {re.sub(r"[-_.]+", "-", d).lower() for d in names.get(top, [top])}
                if not dists & (library.keys() | course.keys()):
                    missing.add(f"{nb.name}: {top}")
    assert not missing, sorted(missing)
    assert not {"datasets", "transformers", "matplotlib", "scikit-learn", "ipywidgets"} & library.keys()
