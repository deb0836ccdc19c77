"""Stops stock `nbdev-export` and `nbdev-prepare`, which cannot export this course: written by hand, not exported.

nbdev exports into one package, and this course has two; run stock, it writes stray copies of every module under
`lightbrain/lightbrain/` and `lightbrain/leximind/`. pyproject.toml names `refuse` in `export_procs`, so nbdev calls it
on the first cell, before writing anything. `python tools/export.py` exports both packages and never calls it.
"""


def refuse(cell):
    raise SystemExit(
        "error: stock nbdev-export cannot export this course's two packages; nothing was written. "
        "Run `python tools/export.py` instead."
    )
