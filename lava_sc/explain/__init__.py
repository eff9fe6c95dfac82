"""Explainers LAVA is compared with, and assays of an explanation.

* :func:`corpus_attribution` (COCOA) and :func:`label_free_importance` explain an unsupervised
  representation (a PCA, or any encoder you pass) gene by gene, with one integrated-gradients kernel.
* :func:`counterfactual_attribution` (DAC) explains a classifier between two groups from
  counterfactual pairs; :func:`module_faithfulness` asks whether LAVA's modules carry what that
  classifier uses.
* :func:`stability` re-runs LAVA under seeds, subsamples and settings and measures how much of the
  result holds.

Readers and plots of their results stay with the others: ``lv.get.attribution``,
``lv.get.counterfactual``, ``lv.get.faithfulness``, ``lv.get.stability``, ``lv.pl.stability``.
The same functions are also importable from ``lv.tl`` (their first home).
"""

from ._corpus_attribution import corpus_attribution
from ._counterfactual import counterfactual_attribution
from ._label_free import label_free_importance
from ._module_faithfulness import module_faithfulness
from ._stability import stability

__all__ = [
    "corpus_attribution",
    "label_free_importance",
    "counterfactual_attribution",
    "module_faithfulness",
    "stability",
]
