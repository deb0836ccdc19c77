"""Build the course's offline data, `lightbrain/course_data/*.jsonl.gz`, from exact copies of the public datasets.

    python tools/make_course_data.py [SOURCE]   # SOURCE: the data mirror (default: ../shared/data)

Each output file holds real examples in the Hugging Face hub's column names, one JSON object per line,
gzip-compressed. Splits are not decided here: the loaders in `lightbrain.data` divide each file into
train / validation / test (see `standard_splits`), so the course's data and a user's own files go
through the same code. Run it again only to rebuild the files; the output is byte-for-byte repeatable.
"""

import csv
import gzip
import io
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "lightbrain" / "course_data"


def write(name: str, rows: list[dict]):
    "Write `rows` as gzip-compressed JSON lines (mtime 0, so that the bytes do not depend on when it ran)."
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as f:
        f.write(text)
    (OUT / f"{name}.jsonl.gz").write_bytes(buf.getvalue())
    print(f"{name}: {len(rows):,} examples, {len(buf.getvalue()) / 1e6:.2f} MB")


def pubmedqa(src: Path) -> list[dict]:
    "The 1,000 expert-labelled items (PQA-L), in the hub's `pqa_labeled` columns."
    data = json.loads((src / "pubmedqa" / "ori_pqal.json").read_text(encoding="utf-8"))
    return [
        {
            "pubid": int(pmid),
            "question": v["QUESTION"],
            "context": {"contexts": v["CONTEXTS"], "labels": v["LABELS"], "meshes": v["MESHES"]},
            "long_answer": v["LONG_ANSWER"],
            "final_decision": v["final_decision"],
        }
        for pmid, v in data.items()
    ]


def emotion(src: Path) -> list[dict]:
    "All 20,000 tweets of dair-ai/emotion with their hub split."
    return [
        {**json.loads(line), "split": split}
        for split in ("train", "validation", "test")
        for line in (src / "emotion" / f"{split}.hf_format.jsonl").read_text(encoding="utf-8").splitlines()
    ]


def ag_news(src: Path) -> list[dict]:
    """The 7,600 items of AG News's original test.csv, as the hub writes them (text = title + ' ' + description,
    label 0-3)."""
    with open(src / "ag_news" / "test.csv", encoding="utf-8", newline="") as f:
        return [{"text": f"{title} {description}", "label": int(cls) - 1} for cls, title, description in csv.reader(f)]


def cnn_dailymail(src: Path) -> list[dict]:
    "The 250 CNN/DailyMail test articles with reference summaries from the FRANK benchmark's copy."
    rows = [
        json.loads(line)
        for line in (src / "cnndm_xsum_frank" / "frank_articles_references.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()
    ]
    return [
        {"id": r["hash"], "article": r["article"], "highlights": r["reference"]}
        for r in rows
        if r["dataset"] == "cnndm"
    ]


if __name__ == "__main__":
    src = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT.parent / "shared" / "data")
    OUT.mkdir(exist_ok=True)
    for make in (pubmedqa, emotion, ag_news, cnn_dailymail):
        write(make.__name__, make(src))
