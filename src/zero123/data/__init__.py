"""Multi-view training data: procedural objects (:mod:`.objects`), mesh import (:mod:`.meshes`),
cameras (:mod:`.cameras`), the dataset writer (:mod:`.writer`) and the ``views_release`` reader
(:mod:`.views_release`). Import the submodules directly; this package imports nothing heavy."""
