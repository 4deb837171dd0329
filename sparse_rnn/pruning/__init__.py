"""Block pruning of LSTM language models: scores, schedules, masks, regularizer, tools.

A model pruned here keeps ordinary ``nn.LSTM`` and ``nn.Linear`` modules with whole blocks set
to zero; ``sparse_rnn.sparsify(model, block_size=...)`` then converts it losslessly.
"""

from sparse_rnn.pruning.pruner import GradualPruner
from sparse_rnn.pruning.schedules import SPARSITY_SCHEDULES, NarangSchedule, cubic, one_shot
from sparse_rnn.pruning.scores import block_scores, global_masks, layerwise_masks, rank_blocks
from sparse_rnn.pruning.targets import PruningTarget, prunable_weights

__all__ = [
    "SPARSITY_SCHEDULES",
    "GradualPruner",
    "NarangSchedule",
    "PruningTarget",
    "block_scores",
    "cubic",
    "global_masks",
    "layerwise_masks",
    "one_shot",
    "prunable_weights",
    "rank_blocks",
]
