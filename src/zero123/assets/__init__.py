"""Files shipped inside the package: the bundled small model and an example image."""

from pathlib import Path

ASSETS_DIR = Path(__file__).parent
#: The small model trained by the project and shipped with the package (a pipeline folder).
BUNDLED_MODEL_DIR = ASSETS_DIR / "zero123-small"
#: Name that resolves to :data:`BUNDLED_MODEL_DIR` wherever a model is asked for.
BUNDLED_MODEL_NAME = "bundled"
EXAMPLE_IMAGE = ASSETS_DIR / "example.png"


def bundled_model_dir() -> Path:
    """:data:`BUNDLED_MODEL_DIR`, checked: a clear error when the install lacks the model files."""
    if not (BUNDLED_MODEL_DIR / "model_index.json").is_file():
        raise FileNotFoundError(f"the bundled model is missing from this install ({BUNDLED_MODEL_DIR})")
    return BUNDLED_MODEL_DIR
