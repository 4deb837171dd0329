"""Block pruning of LSTM language models: scores, schedules, masks, regularizer, tools.

A model pruned here keeps ordinary ``nn.LSTM`` and ``nn.Linear`` modules with whole blocks set
to zero; ``sparse_rnn.sparsify(model, block_size=...)`` then converts it losslessly.
"""

from sparse_rnn.pruning.group_lasso import GroupLasso, group_lasso_penalty
from sparse_rnn.pruning.interop import (
    block_mask_from_element_mask,
    masks_from_ao_sparsifier,
    masks_from_torch_prune,
)
from sparse_rnn.pruning.masks import element_mask
from sparse_rnn.pruning.pruner import GradualPruner
from sparse_rnn.pruning.report import WeightReport, format_report, pruning_report
from sparse_rnn.pruning.schedules import SPARSITY_SCHEDULES, NarangSchedule, cubic, one_shot
from sparse_rnn.pruning.scores import (
    balanced_top_blocks_mask,
    block_scores,
    global_masks,
    layerwise_masks,
    rank_blocks,
)
from sparse_rnn.pruning.sensitivity import (
    SensitivityRow,
    format_sensitivity_table,
    plot_sensitivity,
    sensitivity_analysis,
)
from sparse_rnn.pruning.targets import PruningTarget, prunable_weights

__all__ = [
    "SPARSITY_SCHEDULES",
    "GradualPruner",
    "GroupLasso",
    "NarangSchedule",
    "PruningTarget",
    "SensitivityRow",
    "WeightReport",
    "balanced_top_blocks_mask",
    "block_mask_from_element_mask",
    "block_scores",
    "cubic",
    "element_mask",
    "format_report",
    "format_sensitivity_table",
    "global_masks",
    "group_lasso_penalty",
    "layerwise_masks",
    "masks_from_ao_sparsifier",
    "masks_from_torch_prune",
    "one_shot",
    "plot_sensitivity",
    "prunable_weights",
    "pruning_report",
    "rank_blocks",
    "sensitivity_analysis",
]
