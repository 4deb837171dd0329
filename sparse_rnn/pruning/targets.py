"""Which weights of a model get pruned, and the block layout of each.

Every weight of an ``nn.LSTM`` (``weight_ih_l*``, ``weight_hh_l*``, ``weight_hr_l*``, reverse
directions included) and every ``nn.Linear`` weight can be a target. Each one is cut into blocks
exactly as :func:`sparse_rnn.sparsify` will cut it, so a pruned model converts losslessly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import nn

from sparse_rnn.block_layout import BlockLayout, check_block_size
from sparse_rnn.sparse_lstm import lstm_layouts

TargetsArg = Sequence[str | nn.Parameter] | Mapping[str | nn.Parameter, float] | None


@dataclass(frozen=True, eq=False)
class PruningTarget:
    """One prunable weight: its name in the model, the parameter itself and its block layout."""

    name: str
    parameter: nn.Parameter
    layout: BlockLayout


def prunable_weights(model: nn.Module, block_size: int) -> dict[str, PruningTarget]:
    """Every ``nn.LSTM`` and ``nn.Linear`` weight of ``model``, keyed by parameter name.

    A parameter shared by several modules appears once, under its first name; pruning it
    prunes every module that shares it (an embedding tied to the output layer, for example).
    """
    check_block_size(block_size)
    found: dict[str, PruningTarget] = {}
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        prefix = f"{module_name}." if module_name else ""
        for local_name, layout in module_layouts(module, block_size).items():
            parameter = getattr(module, local_name, None)
            if not isinstance(parameter, nn.Parameter) or id(parameter) in seen:
                continue
            seen.add(id(parameter))
            found[prefix + local_name] = PruningTarget(prefix + local_name, parameter, layout)
    return found


def select_targets(
    model: nn.Module, block_size: int, targets: TargetsArg, default_value: float
) -> tuple[list[PruningTarget], dict[str, float]]:
    """Resolve ``targets`` (names, parameters, or a mapping of either to a number).

    Returns the selected targets and the number of each (a sparsity for the pruner, a factor
    for group lasso), ``default_value`` where ``targets`` gives none. Raises ``ValueError`` for
    a target that is not a prunable weight.
    """
    available = prunable_weights(model, block_size)
    if targets is None:
        return list(available.values()), {name: default_value for name in available}

    if isinstance(targets, str | nn.Parameter):
        targets = [targets]
    by_id = {id(target.parameter): target for target in available.values()}
    items = targets.items() if isinstance(targets, Mapping) else ((t, None) for t in targets)
    selected: dict[str, PruningTarget] = {}
    values: dict[str, float] = {}
    for key, value in items:
        target = by_id.get(id(key)) if isinstance(key, nn.Parameter) else available.get(key)
        if target is None:
            shown = repr(key)
            if isinstance(key, nn.Parameter):
                shown = f"a Parameter of shape {tuple(key.shape)}"
            raise ValueError(
                f"targets: {shown} is not a weight of an nn.LSTM or nn.Linear of the model; "
                f"the prunable weights are {sorted(available)}"
            )
        selected[target.name] = target
        values[target.name] = default_value if value is None else float(value)
    return list(selected.values()), values


def module_layouts(module: nn.Module, block_size: int) -> dict[str, BlockLayout]:
    """Layouts of the prunable weights of ``module`` itself, by local name ({} for others)."""
    if isinstance(module, nn.LSTM):
        return lstm_layouts(
            module.input_size,
            module.hidden_size,
            module.num_layers,
            module.bidirectional,
            module.proj_size,
            block_size,
        )
    if isinstance(module, nn.Linear):
        return {"weight": BlockLayout(1, module.out_features, module.in_features, block_size)}
    return {}
