import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Offline copies of real data; CI places them beside the clone. Tests that need them skip when absent.
SHARED_DATA = Path(os.environ.get("LIGHTBRAIN_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared(*parts) -> Path:
    "Path to a file in the shared data mirror, or skip the test (saying why) when it is not there."
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found: the offline data mirror is not available here")
    return path


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    "PubMedQA (the course's slice) prepared with a 300-token BPE: token files for tiny language-model runs."
    from lightbrain.data import load_pubmedqa, prepare, pubmedqa_text
    from lightbrain.tokenizer import BPETokenizer

    d = tmp_path_factory.mktemp("data")
    docs = load_pubmedqa("builtin")
    tok = BPETokenizer.train([pubmedqa_text(ex) for ex in docs["train"].select(range(500))], 300, ["<|endoftext|>"])
    prepare(docs, tok, d, pubmedqa_text)
    return d
