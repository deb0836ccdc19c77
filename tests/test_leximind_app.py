"""leximind.app: the LexiMind object's answers to bad input, long texts and short ones (its command lines:
test_cli.py)."""

import math
import warnings

import pytest

from leximind.app import LexiMind


def test_app_bad_input_and_truncation(leximind_quick):
    tasks, tokenizer, data, model = leximind_quick
    app = LexiMind(model, tokenizer, "cpu", max_new_tokens=8)
    for bad in ("", "   ", [], ["ok", ""]):
        with pytest.raises(ValueError, match="analyze"):
            app.analyze(bad)
    with warnings.catch_warnings(record=True) as caught:  # no warning: the result's notes say it (issue 17)
        warnings.simplefilter("always")
        result = app.analyze("word " * 1000)
    assert not caught and result["notes"][0].startswith("the text was cut: LexiMind reads 256 tokens and this one has")
    assert app.analyze("word " * 200)["notes"] == []  # 200 words: under 256 tokens with the prefix, not cut
    short = app.analyze("a sentence of six words here")  # a summary would be invented, not shortened
    assert short["summary"] is None and short["notes"] == [
        "no summary: the text is too short to summarize (6 of at least 30 words)"
    ]
    assert app.analyze("a sentence of six words here", tasks=["topic"])["notes"] == []  # no summary asked
    with pytest.raises(ValueError, match="half of a UTF-16 pair"):
        app.analyze("caf\udce9")  # a lone surrogate: how Python reads a byte that is not UTF-8
    assert set(result) == {"summary", "emotion", "topic", "notes"} and math.isclose(
        sum(result["topic"]["probabilities"].values()), 1, abs_tol=1e-3
    )
    with pytest.raises(FileNotFoundError):
        LexiMind.load("no/such/checkpoint")
