"The course's structure: notebooks, exports, Colab, the site and the docs index."

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import tomllib
import yaml

from conftest import ROOT

NBS = ROOT / "nbs"
NOTEBOOKS = sorted(NBS.glob("*.ipynb"))
CHAPTERS = [p for p in NOTEBOOKS if p.name != "index.ipynb"]
REPO_URL = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
PACKAGES = ("lightbrain", "leximind")


def cells(nb_path):
    return json.loads(nb_path.read_text())["cells"]


def test_no_stray_files_at_root():
    for name in ("__init__.py", "_modidx.py", "settings.ini", "setup.py"):
        assert not (ROOT / name).exists(), name


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_colab_badge_and_install_cell(nb):
    """Every notebook starts with an Open-in-Colab badge for itself, then a cell that installs the course only in Colab:
    the [course] extra, without which the notebooks' own imports (datasets, matplotlib, ...) are missing."""
    first = "".join(cells(nb)[0]["source"])
    owner_repo = REPO_URL.removeprefix("https://github.com/")
    assert f"colab.research.google.com/github/{owner_repo}/blob/main/nbs/{nb.name})" in first, first
    code = ["".join(c["source"]) for c in cells(nb) if c["cell_type"] == "code"]
    if nb.name != "index.ipynb":  # the home page has no code to run
        assert '"google.colab" in sys.modules' in code[0] and f"lightbrain-leximind[course] @ git+{REPO_URL}" in code[0]


def _sidebar_sections():
    contents = yaml.safe_load((NBS / "sidebar.yml").read_text())["website"]["sidebar"]["contents"]
    return {s["section"]: s["contents"] for s in contents if isinstance(s, dict)}, [
        s for s in contents if isinstance(s, str)
    ]


def test_sidebar_lists_every_chapter_in_reading_order():
    sections, top = _sidebar_sections()
    assert top == ["index.ipynb"]
    part1, part2 = sections.get("Part I: LightBrain", []), sections.get("Part II: LexiMind", [])
    assert set(sections) <= {"Part I: LightBrain", "Part II: LexiMind"}
    assert part1 + part2 == [p.name for p in CHAPTERS], "sidebar.yml must list every chapter once, in order"
    assert all(int(n[:2]) < 10 for n in part1) and all(int(n[:2]) >= 10 for n in part2)


def test_readme_links_every_chapter():
    readme = (ROOT / "README.md").read_text()
    for nb in CHAPTERS:
        assert f"](nbs/{nb.name})" in readme, nb.name


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean(nb):
    "Notebooks are committed as nbdev-clean leaves them (outputs kept, metadata stripped)."
    from nbdev.clean import _nbdev_clean

    stored = json.loads(nb.read_text())
    cleaned = json.loads(nb.read_text())
    _nbdev_clean(cleaned, path=None)
    assert cleaned == stored, f"run `nbdev-clean --fname {nb.relative_to(ROOT)}`"


def test_workflows_are_valid():
    """GitHub rejects a workflow that is not valid YAML or breaks its schema (deploy.yaml once had an unquoted ': '
    in a step name)."""
    files = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.y*ml"))
    lint = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", *files],
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    deploy = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yaml").read_text())
    assert deploy["jobs"]["deploy"]["needs"] == "test"  # the site is published only after the tests pass


def test_both_packages_have_doc_indexes():
    "show_doc and doc links find both packages through their nbdev entry points."
    from nbdev.doclinks import NbdevLookup

    names = {ep.name for ep in entry_points(group="nbdev")}
    assert set(PACKAGES) <= names
    lookup = NbdevLookup()
    assert lookup.doc("lightbrain.core.get_device").endswith("core.html#get_device")
    assert lookup.code("lightbrain.core.get_device").startswith(f"{REPO_URL}/blob/main/lightbrain/core.py#L")
    assert lookup.doc("leximind.model.T5").endswith("encoder_decoder.html#t5")
    assert lookup.code("leximind.model.T5").startswith(f"{REPO_URL}/blob/main/leximind/model.py#L")
    for pkg in PACKAGES:
        mods = {m.split(".")[0] for m in __import__(f"{pkg}._modidx", fromlist=["d"]).d["syms"]}
        assert mods <= {pkg}, f"{pkg}'s index lists modules of another package: {mods}"


@pytest.fixture(scope="module")
def prerendered():
    "The pages as the site's pre-render step (what `nbdev-docs` runs before Quarto) writes them, in _proc/."
    from nbdev.serve import proc_nbs

    return proc_nbs(str(NBS), n_workers=0, force=True)


def test_prerender_builds_every_page(prerendered):
    "The site's pre-render step processes every notebook."
    for nb in NOTEBOOKS:
        assert (prerendered / nb.name).exists(), nb.name
    rendered = json.loads((prerendered / "00_core.ipynb").read_text())
    shown = [
        c for c in rendered["cells"] if c["cell_type"] == "code" and "show_doc(get_device)" in "".join(c["source"])
    ]
    assert shown and "get_device" in json.dumps(shown[0]["outputs"]), "show_doc did not document get_device"


OPEN_FOLDED = re.compile(r'^::: \{\.callout-\w+ collapse="true"[^}]*\}$')


def test_every_solution_is_folded_with_its_output(prerendered):
    """Catches what issue 36 found on the site: each solution's code folded but its output, the answer, printed in
    full under it. Every cell after a chapter's "### Solutions" must sit, output included, inside a collapsed callout
    (a markdown cell that opens it, one that closes it), as the pre-rendered page hands it to Quarto."""
    for nb in CHAPTERS:
        page = [
            (c["cell_type"], "".join(c["source"]).strip(), c)
            for c in json.loads((prerendered / nb.name).read_text())["cells"]
        ]
        starts = [
            i for i, (kind, text, _) in enumerate(page) if kind == "markdown" and text.startswith("### Solutions")
        ]
        assert len(starts) == 1, f"{nb.name}: one Solutions section"
        open_, depth, inside = False, 0, 0
        for kind, text, cell in page[starts[0] + 1 :]:
            if kind == "markdown" and OPEN_FOLDED.match(text):
                open_, depth = True, depth + 1
            elif kind == "markdown" and text == ":::":
                depth -= 1
            elif kind == "code":
                assert open_ and depth == 1, f"{nb.name}: a solution cell outside a collapsed callout"
                assert cell.get("outputs"), f"{nb.name}: the solution's output is not in the page"
                inside += 1
            else:
                assert depth == 0, f"{nb.name}: prose inside the folded solutions: {text[:60]}"
        assert inside and depth == 0, f"{nb.name}: {inside} solution cells, callout left open: {depth}"


def test_export_check_catches_an_unexported_edit(tmp_path):
    "Changing an exported cell without re-exporting makes the export check (step 1 of the test command) fail."
    _copy_repo(tmp_path)
    check = [sys.executable, "tools/export.py", "--check"]
    assert subprocess.run(check, cwd=tmp_path, capture_output=True).returncode == 0
    nb = tmp_path / "nbs" / "00_core.ipynb"
    text = nb.read_text()
    assert "if torch.backends.mps.is_available()" in text
    nb.write_text(
        text.replace("if torch.backends.mps.is_available()", "if False and torch.backends.mps.is_available()")
    )
    res = subprocess.run(check, cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 1 and "lightbrain/core.py" in res.stdout, res.stdout + res.stderr


def _copy_repo(dest):
    for item in ("pyproject.toml", "README.md", "nbs", "tools", *PACKAGES):
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("runs", "data", "__pycache__"))
        else:
            shutil.copy(src, dest / item)


def _package_files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for pkg in PACKAGES for p in (root / pkg).rglob("*.py")}


def test_failed_export_changes_nothing(tmp_path):
    "A notebook that cannot be exported leaves both packages as they were (the old export deleted them first)."
    _copy_repo(tmp_path)
    before = _package_files(tmp_path)
    (tmp_path / "nbs" / "05_gpt.ipynb").write_text("{ not a notebook")
    res = subprocess.run([sys.executable, "tools/export.py"], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode != 0
    assert _package_files(tmp_path) == before
    assert not list(tmp_path.glob(".export-*")), "the temporary tree was left behind"


def test_stock_nbdev_export_refuses(tmp_path):
    "Stock nbdev-export would write stray copies under lightbrain/lightbrain/; the export_procs guard stops it first."
    _copy_repo(tmp_path)
    before = _package_files(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "IN_TEST"}  # nbdev-export does nothing at all under IN_TEST
    res = subprocess.run(
        [str(Path(sys.executable).parent / "nbdev-export")], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert res.returncode == 1 and "python tools/export.py" in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert _package_files(tmp_path) == before


def test_one_version_for_both_packages():
    import leximind
    import lightbrain

    assert leximind.__version__ == lightbrain.__version__
    assert "__version__ =" not in (ROOT / "leximind" / "__init__.py").read_text()  # imported, not a second copy


def test_nbval_compares_checked_outputs(tmp_path):
    "A cell marked NBVAL_CHECK_OUTPUT whose stored output is wrong fails the nbval run."
    nb = json.loads((NBS / "00_core.ipynb").read_text())
    checked = [c for c in nb["cells"] if c["cell_type"] == "code" and "# NBVAL_CHECK_OUTPUT" in "".join(c["source"])]
    assert checked, "chapter 00 should guard at least one output"
    checked[0]["outputs"][0]["text"] = ["cpu  None    -> bf16, loss scaling: False\n"]
    (tmp_path / "00_core.ipynb").write_text(json.dumps(nb))
    shutil.copy(ROOT / "conftest.py", tmp_path / "conftest.py")
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q", "00_core.ipynb"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 1 and "1 failed" in res.stdout, res.stdout[-2000:]


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_imports_stay_in_import_cells(nb):
    "The site's pre-render runs every cell that imports something, without the cells before it: keep imports apart."
    for cell in cells(nb):
        if '"google.colab" in sys.modules' in "".join(cell["source"]):
            continue  # the install cell stands alone by design
        lines = [s for s in "".join(cell["source"]).splitlines() if s.strip() and not s.strip().startswith("#")]
        imports = [s for s in lines if re.match(r"\s*(import|from)\s", s)]
        if cell["cell_type"] == "code" and imports and "#| export" not in "".join(cell["source"]):
            assert len(imports) == len(lines), f"{nb.name}: move {imports} to an import cell"


def _exported_names() -> dict[tuple[str, str], int]:
    "(module, name) -> the number of the chapter whose `#| export` cells define it."
    where = {}
    for nb in CHAPTERS:
        default = None
        for cell in cells(nb):
            source = "".join(cell["source"])
            if m := re.match(r"#\|\s*default_exp\s+(\S+)", source):
                default = m.group(1)
            if cell["cell_type"] != "code" or not (m := re.match(r"#\|\s*exports?\b *(\S*)", source)):
                continue
            body = "\n".join(s for s in source.splitlines() if not s.lstrip().startswith(("%", "!")))
            for node in ast.parse(body).body:
                names = [getattr(node, "name", None)] + [
                    t.id for t in getattr(node, "targets", [getattr(node, "target", None)]) if hasattr(t, "id")
                ]
                for name in filter(None, names):
                    where.setdefault((m.group(1) or default, name), int(nb.name[:2]))
    return where


def test_no_chapter_imports_its_own_or_a_later_chapters_names():
    """A learner reads in order: a chapter may use what earlier chapters built, never what a later one builds, nor
    import from the package what it writes itself (a name it uses before writing it)."""
    where, late = _exported_names(), []
    for nb in CHAPTERS:
        for cell in cells(nb):
            for module, names in re.findall(
                r"^from ((?:lightbrain|leximind)\.\w+) import (\([^)]*\)|[^\n]+)", "".join(cell["source"]), re.M
            ):
                for name in re.findall(r"\w+", names):
                    if where.get((module, name), 0) >= int(nb.name[:2]):
                        late.append(f"{nb.name} imports {module}.{name} from chapter {where[(module, name)]:02d}")
    assert where and not late, late


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_one_module_per_chapter(nb):
    "Catches a chapter exporting cells to a second module by name (`#| exports lightbrain.other`): one module each."
    named = [c["source"][0] for c in cells(nb) if c["source"] and re.match(r"#\|\s*exports?\s+\S", c["source"][0])]
    assert not named, f"{nb.name}: {named}"


def test_leximind_commands_need_nothing_of_lightbrains_project():
    """Catches the command-line plumbing moving back into LightBrain's project module (chapter 08's lightbrain.cli):
    LexiMind's commands are built from lightbrain.core's pieces, so importing them loads no lightbrain.cli."""
    code = "import sys, leximind.app; print('lightbrain.cli' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def _assigned(source: str) -> set[str]:
    "The names a cell's code assigns at its top level (`a = ...`, `a, b = ...`, `a = b = ...`)."
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def test_each_rehearsed_chapter_names_its_sizes_in_a_parameters_cell():
    """Catches the rehearsal running full mode at full size (hours on a CPU): a `parameters` tag lost (nbdev-clean
    strips cell tags unless pyproject.toml allows them), or a size renamed in the chapter but not in rehearse.SIZES.
    Every name the rehearsal sets must be one the chapter's parameters cell sets."""
    sys.path.insert(0, str(ROOT / "tools"))
    from rehearse import SIZES

    for chapter, sizes in SIZES.items():
        nb = json.loads((NBS / f"{chapter}.ipynb").read_text())
        cells = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
        assert len(cells) == 1, f"{chapter}: {len(cells)} cells tagged parameters"
        missing = _assigned(sizes.format(n=2)) - _assigned("".join(cells[0]["source"]))
        assert not missing, f"{chapter}: the rehearsal sets {sorted(missing)}, which its parameters cell does not"
