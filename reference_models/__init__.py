"""Reference models: runnable PyTorch models that the audited documents are held against, as an archaudit plugin
(found through the ``archaudit.references`` entry point; archaudit itself never imports this package).

Each entry carries its provenance: the citation, the input it expects, and every hyperparameter its source
leaves unstated, with the value chosen and the figure of the source that fixed it.
"""

from ._registry import Assumption, ReferenceModel, get_reference, reference_names, references

__all__ = ["Assumption", "ReferenceModel", "get_reference", "reference_names", "references"]
