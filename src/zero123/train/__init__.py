"""Training: ``zero123 train`` (config, CFG dropout, EMA, VAE stage, the accelerate loop) and export.

Heavy imports stay inside the submodules; import what you need from them, e.g.
``from zero123.train.loop import train`` and ``from zero123.train.config import Config``.
"""
