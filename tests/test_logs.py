"""Job logs people can read: no carriage-return progress bars, no warnings the design makes harmless."""

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

from lmmap.logs import UNMASKED_PADDING, explain_unmasked_padding, quiet_progress_bars
from tiny_models import sample_texts, save_tiny_model

SRC = Path(__file__).resolve().parents[1] / "src"


def test_progress_bars_are_off_where_the_output_is_no_terminal(monkeypatch):
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "")  # recorded, so the test leaves the environment as it was
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS")
    quiet_progress_bars(io.StringIO())
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"


def test_the_unmasked_padding_is_explained_once_instead_of_warned(caplog):
    caplog.set_level(logging.INFO)
    log = logging.getLogger("lmmap.scoring")
    explain_unmasked_padding(log)
    explain_unmasked_padding(log)
    logging.getLogger("transformers.modeling_utils").warning(
        "We strongly recommend passing in an `attention_mask` since your input_ids may be padded."
    )
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count(UNMASKED_PADDING) <= 1 and not any("strongly recommend" in m for m in messages)


def test_a_scoring_job_log_has_no_progress_bars_or_padding_warning(tmp_path):
    """`lmmap score` as a Snakemake job runs it: stderr to a file. Rows of different lengths are padded."""
    import json

    directory = save_tiny_model(tmp_path / "m", "gpt2", max_positions=128)
    texts = tmp_path / "texts.jsonl"
    texts.write_text(
        "".join(
            json.dumps({"id": f"t{k}", "domain": "demo", "text": t}) + "\n"
            for k, t in enumerate(sample_texts(12, seed=3, min_words=2, max_words=30))
        )
    )
    log = tmp_path / "job.log"
    with open(log, "w") as fh:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "lmmap",
                "score",
                "--model-id",
                "m",
                "--source",
                str(directory),
                "--texts",
                str(texts),
                "--device",
                "cpu",
                "--batch-tokens",
                "128",
                "--out",
                str(tmp_path / "m.npz"),
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"},
        )
    text = log.read_text()
    assert result.returncode == 0, text
    assert "\r" not in text and "Loading weights" not in text
    assert "attention_mask" not in text and text.count("run without an attention mask on purpose") == 1
