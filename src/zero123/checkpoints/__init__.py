"""Loading and converting Zero-1-to-3 checkpoints in every published format (docs/conventions.md, Checkpoint formats).

>>> from zero123.checkpoints import FORMATS
>>> FORMATS
('zero123', 'diffusers_a', 'diffusers_b', 'ldm')
"""

from .convert_ldm import IGNORED_KEYS, IGNORED_PREFIXES, convert_ldm_state_dict, flat_ema_key
from .detect import FORMATS, CheckpointFormat, detect_format
from .load import LoadedCheckpoint, load_components
from .registry import KNOWN, KnownCheckpoint, infer_camera_embedding, resolve
from .statedict import read_checkpoint

__all__ = [
    "FORMATS",
    "IGNORED_KEYS",
    "IGNORED_PREFIXES",
    "KNOWN",
    "CheckpointFormat",
    "KnownCheckpoint",
    "LoadedCheckpoint",
    "convert_ldm_state_dict",
    "detect_format",
    "flat_ema_key",
    "infer_camera_embedding",
    "load_components",
    "read_checkpoint",
    "resolve",
]
