"""Job logs people can read: no carriage-return progress bars, and no library warnings that lmmap's
design makes harmless (each replaced by one line that says why). Imports nothing heavy."""

from __future__ import annotations

import logging
import os
import sys

UNMASKED_PADDING = (
    "batches are right-padded and run without an attention mask on purpose: under the causal mask a real "
    "token never attends to the padding to its right, so its log-probability is that of the unpadded "
    "text, and the padding positions are never scored (transformers' attention-mask warning is "
    "therefore silenced)"
)
_explained: set[str] = set()


class _Drop(logging.Filter):
    """Drops records whose message contains every one of `words`."""

    def __init__(self, *words: str):
        super().__init__()
        self.words = words

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not all(word in message for word in self.words)


def quiet_progress_bars(stream=None) -> None:
    """No tqdm bars from Hugging Face libraries ("Loading weights", "Writing model shards") where the
    output is not a terminal, i.e. in every job log: set before those libraries are imported."""
    if not (stream or sys.stderr).isatty():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def explain_unmasked_padding(log: logging.Logger) -> None:
    """Say once per process why padded batches carry no attention mask, and silence transformers'
    warning about it (it would otherwise suggest an error where there is none)."""
    if "padding" in _explained:
        return
    _explained.add("padding")
    logging.getLogger("transformers.modeling_utils").addFilter(_Drop("attention_mask", "padded"))
    log.info(UNMASKED_PADDING)
