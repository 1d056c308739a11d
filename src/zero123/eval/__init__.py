"""Novel-view evaluation (docs/conventions.md, Evaluation protocols): metrics, protocols, data reader and runner.

>>> from zero123.eval import get_protocol
>>> get_protocol("syncdreamer-gso30").resolution
256
"""

from .metrics import foreground_mask, load_lpips, lpips_availability, mask_iou, psnr, ssim
from .protocols import PROTOCOLS, EvalProtocol, TargetChange, get_protocol, parse_targets
from .runner import EvalReport, IdentityPredictor, PipelinePredictor, evaluate, format_summary
from .views import ViewsFolder

__all__ = [
    "PROTOCOLS",
    "EvalProtocol",
    "EvalReport",
    "IdentityPredictor",
    "PipelinePredictor",
    "TargetChange",
    "ViewsFolder",
    "evaluate",
    "foreground_mask",
    "format_summary",
    "get_protocol",
    "load_lpips",
    "lpips_availability",
    "mask_iou",
    "parse_targets",
    "psnr",
    "ssim",
]
