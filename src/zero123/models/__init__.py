"""Model components specific to Zero-1-to-3 and builders of full / small / tiny random models."""

from .cc_projection import CCProjection

__all__ = ["CCProjection"]
