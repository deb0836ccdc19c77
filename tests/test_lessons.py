"""What a learner reads: stored outputs without noise, the idea before the machinery, a picture for each mechanism,
signposts, and prose that says what the cells show. Each test names the slip it catches."""

import json
import re

import pytest

from conftest import ROOT

NBS = ROOT / "nbs"
CHAPTERS = sorted(p for p in NBS.glob("[0-9]*.ipynb"))


def cells(name: str) -> list[dict]:
    return json.loads((NBS / f"{name}.ipynb").read_text())["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def output_text(cell: dict) -> str:
    "Everything a reader sees of a code cell's stored outputs, as text."
    parts = []
    for o in cell.get("outputs", []):
        parts.append("".join(o.get("text", "")))
        parts += ["".join(v) for k, v in o.get("data", {}).items() if k.startswith("text/")]
    return "\n".join(parts)


def prose(name: str) -> str:
    return "\n".join(source(c) for c in cells(name) if c["cell_type"] == "markdown")


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.stem)
def test_no_frozen_progress_bars_or_bare_widget_reprs(nb):
    # Catches: a tqdm bar stored at "0%" (on GitHub the cell looks unexecuted) and a widget stored as its Python
    # repr, `VBox(children=(...` (GitHub and the site have no kernel to draw it): show_widget adds a static copy.
    for i, cell in enumerate(json.loads(nb.read_text())["cells"]):
        for o in cell.get("outputs", []):
            text, data = "".join(o.get("text", "")), o.get("data", {})
            assert not re.search(r"\d+%\|", text), f"{nb.name} cell {i}: a progress bar in a stored output"
            plain = "".join(data.get("text/plain", ""))
            assert not re.match(r"(VBox|HBox|IntProgress|FloatProgress)\(", plain), f"{nb.name} cell {i}: {plain[:40]}"
            if "application/vnd.jupyter.widget-view+json" in data:
                assert "text/html" in data, f"{nb.name} cell {i}: a widget with no static copy (use show_widget)"
        outputs = cell.get("outputs", [])
        for before, out in zip([{}] + outputs, outputs):
            if out["output_type"] != "stream":
                continue
            # Catches: a streaming print stored as dozens of fragments, some empty (tools/run_chapter.py joins them)
            assert "".join(out["text"]), f"{nb.name} cell {i}: an empty stream output (run tools/run_chapter.py)"
            assert before.get("name") != out["name"], f"{nb.name} cell {i}: stream fragments (tools/run_chapter.py)"


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.stem)
def test_each_chapter_opens_with_its_goal_and_ends_with_a_summary(nb):
    # Catches: a chapter that never says what the learner will build, what it assumes, or what they learnt.
    text = "\n".join(source(c) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "markdown")
    assert "**What you will build.**" in text and "**What it assumes.**" in text, nb.name
    assert "\n## Summary" in "\n" + text, nb.name


CLAIMS_CORRECTED = {  # a phrase once in the lessons that the cells did not support, and the chapter it was in
    "proven identical to GPT-2": "index",
    "on data the course makes itself": "00_core",
    "falls back to data the course makes itself": "00_core",
    "slow on tensor cores": "00_core",
    "Unicode defines about 150,000": "01_tokenization",
    "PyTorch returns zeros for such rows": "03_attention",
    "post-LN's gradients at initialisation are largest near the output": "04_normalization",
    "GPT-2 draws every weight from": "05_gpt",
    "Papers usually quote a count without the position embedding": "05_gpt",
    "every weight then moves by about `lr` per step, whatever": "06_training",
    "The cosine restarts its course": "06_training",
    "train a tiny GPT for a minute": "07_generation",
    "a ninth of the unigram baseline": "08_lightbrain_pubmed",
    "then the SentencePiece pieces (32,000": "10_sentencepiece",
    "highlights already are": "14_evaluation",
    "(12 to 48 points)": "14_evaluation",
    "the model reads the last 128 tokens before the answer, its whole context": "08_lightbrain_pubmed",
    "1.06x the training speed of Hugging Face": "index",  # issue 37: the favourable figure alone, no nanoGPT
}


@pytest.mark.parametrize("phrase", CLAIMS_CORRECTED)
def test_a_corrected_claim_stays_corrected(phrase):
    # Catches: a sentence that claimed more than its cells show (or was wrong) coming back in an edit.
    nb = CLAIMS_CORRECTED[phrase]
    text = prose(nb) + "\n".join(source(c) for c in cells(nb) if c["cell_type"] == "code")
    assert phrase not in text, f"{nb}: {phrase!r}"


DEVELOPMENT_LOG = [  # history belongs in bench/README.md; a lesson states what is true now
    r"previous version of this chapter",
    r"the commit before",
    r"no GPU was lent",
    r"out of reach",
    r"[Bb]efore the two details above",
    r"an earlier day's run",
    r"one run measured",
]


@pytest.mark.parametrize("nb", CHAPTERS + [NBS / "index.ipynb"], ids=lambda p: p.stem)
def test_no_development_log_in_a_lesson(nb):
    # Catches: "the merge loop of the previous version of this chapter took 0.71 s" and its kind in a lesson.
    text = "\n".join(source(c) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "markdown")
    for pattern in DEVELOPMENT_LOG:
        assert not re.search(pattern, text), f"{nb.name}: {pattern}"


def cell_index(name: str, marker: str) -> int:
    found = [i for i, c in enumerate(cells(name)) if c["cell_type"] == "code" and marker in source(c)]
    assert found, f"{name}: no code cell with {marker!r}"
    return found[0]


@pytest.mark.parametrize(
    "name, idea, machinery",
    [
        ("01_tokenization", "def train_minimal(", "def _train_bpe("),  # a whole small tokenizer before the fast one
        ("05_gpt", "h = Block(cfg)(h)", "class GPT("),  # one batch through the parts before the class
        ("06_training", "optimizer.step()  # move every weight", "def train("),  # six lines before train()
        ("12_seq2seq_decoding", "def toy_search(", "def _beam_search("),  # the toy search before the batched one
    ],
)
def test_the_idea_comes_before_the_machinery(name, idea, machinery):
    # Catches: a chapter that shows its production code before the few lines that carry the idea.
    assert cell_index(name, idea) < cell_index(name, machinery), name


@pytest.mark.parametrize(
    "name, marker",
    [
        ("01_tokenization", "BPE merges on"),
        ("03_attention", "future masked"),
        ("05_gpt", "def gpt_diagram("),
        ("06_training", "loss\\none number"),
        ("07_generation", "The KV cache of one block"),
        ("11_encoder_decoder", "cross-attention"),
        ("12_seq2seq_decoding", "def toy_steps("),
    ],
)
def test_each_mechanism_has_its_picture(name, marker):
    # Catches: a picture's cell that lost its stored figure (not run, or it raised) or was removed.
    pictures = [
        c
        for c in cells(name)
        if c["cell_type"] == "code" and marker in source(c) and "plt." in source(c)
        for o in c.get("outputs", [])
        if "image/png" in o.get("data", {})
    ]
    assert pictures, f"{name}: no stored figure in the cell with {marker!r}"


def numbers(text: str) -> list[str]:
    "The decimals in a text, except in `code` and after '≈' (formulas and constants, not printed results)."
    return re.findall(r"(?<![\d.≈])(?<!≈ )\d+\.\d+(?![\d.])", re.sub(r"`[^`]*`", "", text))


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.stem)
def test_a_stored_runs_numbers_are_in_its_outputs(nb):
    # Catches: prose about "the stored run" quoting a number the outputs no longer print (a stale number after a
    # re-run). Each decimal in such a paragraph must be some output number, rounded to the prose's decimals.
    chapter = json.loads(nb.read_text())["cells"]
    printed = [float(x) for c in chapter for x in numbers(output_text(c))]
    for c in chapter:
        if c["cell_type"] != "markdown":
            continue
        for paragraph in source(c).split("\n\n"):
            if "stored run" not in paragraph and "stored output" not in paragraph:
                continue
            for quoted in numbers(paragraph):
                q, tolerance = float(quoted), 0.5 * 10 ** -len(quoted.split(".")[1]) + 1e-9  # rounded as printed
                percent = re.search(re.escape(quoted) + "%", paragraph) is not None  # 36.7% may be printed 0.367
                assert any(abs(x - q) <= tolerance or (percent and abs(100 * x - q) <= tolerance) for x in printed), (
                    f"{nb.name}: {quoted} in {paragraph[:80]!r}... is in no stored output"
                )
