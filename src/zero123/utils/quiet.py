"""Keep third-party loading bars out of our output.

diffusers and transformers draw a tqdm bar per component they load ("Loading weights: 100%|...").
Everything that reads weights (:func:`zero123.checkpoints.load_components`, hence
``Zero123Pipeline.from_pretrained``, :func:`zero123.loading.load_pipeline` and every command) runs
inside :func:`no_loading_bars`, which switches those bars off for the duration and restores the
previous setting afterwards; our own progress (rich, on stderr) is unaffected.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def no_loading_bars() -> Iterator[None]:
    """Disable the diffusers and transformers progress bars inside the block.

    >>> with no_loading_bars():
    ...     pass
    """
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    restore = []
    for module in (diffusers_logging, transformers_logging):
        if module.is_progress_bar_enabled():
            module.disable_progress_bar()
            restore.append(module)
    try:
        yield
    finally:
        for module in restore:
            module.enable_progress_bar()
