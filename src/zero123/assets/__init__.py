"""Files shipped inside the package: the bundled small model and an example image."""

from pathlib import Path

ASSETS_DIR = Path(__file__).parent
#: The small model trained by the project and shipped with the package (a pipeline folder).
BUNDLED_MODEL_DIR = ASSETS_DIR / "zero123-small"
#: Name that resolves to :data:`BUNDLED_MODEL_DIR` wherever a model is asked for.
BUNDLED_MODEL_NAME = "bundled"
EXAMPLE_IMAGE = ASSETS_DIR / "example.png"
