"""Masks from torch.nn.utils.prune and torch.ao.pruning: import, and refusal of mixed blocks."""

import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_language_model import TinyCharLM
from torch.ao.pruning import WeightNormSparsifier
from torch.nn.utils import prune

from sparse_rnn import sparsify
from sparse_rnn.block_layout import BlockLayout
from sparse_rnn.pruning import (
    GradualPruner,
    block_mask_from_element_mask,
    element_mask,
    masks_from_ao_sparsifier,
    masks_from_torch_prune,
)

BLOCK_SIZE = 4


def random_block_mask(layout, generator):
    return torch.rand(layout.num_block_rows, layout.num_block_cols, generator=generator) > 0.5


def test_torch_prune_block_masks_are_imported_and_convert_losslessly():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = TinyCharLM(hidden_size=10)
    lstm_layout = BlockLayout(4, 10, 10, BLOCK_SIZE)
    output_layout = BlockLayout(1, model.output.out_features, 10, BLOCK_SIZE)
    chosen = {
        "lstm.weight_hh_l1": random_block_mask(lstm_layout, generator),
        "output.weight": random_block_mask(output_layout, generator),
    }
    prune.custom_from_mask(
        model.lstm, "weight_hh_l1", element_mask(lstm_layout, chosen["lstm.weight_hh_l1"])
    )
    prune.custom_from_mask(
        model.output, "weight", element_mask(output_layout, chosen["output.weight"])
    )
    inputs = torch.randint(0, 14, (9, 3))
    with torch.no_grad():
        expected = model(inputs)

    masks = masks_from_torch_prune(model, BLOCK_SIZE)
    assert set(masks) == set(chosen)
    for name, mask in chosen.items():
        assert torch.equal(masks[name], mask), name
    # The reparametrization is gone: plain parameters, no *_orig / *_mask left.
    names = dict(model.named_parameters())
    assert "lstm.weight_hh_l1" in names and "output.weight" in names
    assert not any(key.endswith(("_orig", "_mask")) for key in model.state_dict())

    with torch.no_grad():
        torch.testing.assert_close(model(inputs), expected, atol=0, rtol=0)

    # A schedule at sparsity 0 keeps the imported blocks pruned; they never come back.
    pruner = GradualPruner(model, 0.0, BLOCK_SIZE, end_step=0, targets=list(masks))
    pruner.set_block_masks(masks)
    pruner.step()
    for name, mask in masks.items():
        assert torch.equal(pruner.block_masks()[name], mask), name
    with torch.no_grad():
        sparsify(model, block_size=BLOCK_SIZE, backend="reference")
        torch.testing.assert_close(model(inputs), expected, atol=1e-5, rtol=1e-5)


def test_unstructured_torch_prune_mask_is_refused_naming_mixed_blocks():
    torch.manual_seed(1)
    model = TinyCharLM(hidden_size=8)
    prune.l1_unstructured(model.lstm, "weight_ih_l0", amount=0.3)
    layout = BlockLayout(4, 8, 8, BLOCK_SIZE)
    with pytest.raises(
        ValueError, match="lstm.weight_ih_l0: the mask is not made of whole 4x4"
    ) as info:
        masks_from_torch_prune(model, BLOCK_SIZE)
    # Every listed block is indeed mixed in the element mask.
    grid = layout.to_block_grid(model.lstm.weight_ih_l0_mask).flatten(2)
    listed = re.findall(r"\((\d+), (\d+), (\d+)\)", str(info.value))
    assert listed
    for gate, row, col in (tuple(map(int, block)) for block in listed):
        block = grid[gate * layout.block_rows_per_gate + row, col]
        assert 0 < int(block.sum()) < block.numel()
    # Nothing was changed: the pruning reparametrization is still in place.
    assert hasattr(model.lstm, "weight_ih_l0_orig")


def test_mask_across_a_gate_boundary_is_refused():
    # hidden 6, blocks of 4: a mask blocked over the stacked rows (0-3, 4-7, ...) straddles
    # gates 0 and 1, whose blocks start at rows 0, 4 | 6, 10.
    layout = BlockLayout(4, 6, 8, BLOCK_SIZE)
    mask = torch.ones(layout.shape, dtype=torch.bool)
    mask[4:8, 0:4] = False
    # Gate 0's partial block row 1 (rows 4, 5) is wholly pruned; gate 1's first block is mixed.
    with pytest.raises(ValueError, match=r"column\): \[\(1, 0, 0\)\]$"):
        block_mask_from_element_mask(mask, layout, "w")


def test_weight_norm_sparsifier_masks_are_imported():
    torch.manual_seed(2)
    model = TinyCharLM(hidden_size=8)
    sparsifier = WeightNormSparsifier(
        sparsity_level=0.5,
        sparse_block_shape=(BLOCK_SIZE, BLOCK_SIZE),
        zeros_per_block=BLOCK_SIZE * BLOCK_SIZE,
    )
    sparsifier.prepare(
        model, [{"tensor_fqn": "lstm.weight_hh_l0"}, {"tensor_fqn": "output.weight"}]
    )
    sparsifier.step()
    element_masks = {
        "lstm.weight_hh_l0": model.lstm.parametrizations["weight_hh_l0"][0].mask.clone(),
        "output.weight": model.output.parametrizations["weight"][0].mask.clone(),
    }
    masks = masks_from_ao_sparsifier(sparsifier, BLOCK_SIZE)
    assert set(masks) == set(element_masks)
    layouts = {
        "lstm.weight_hh_l0": BlockLayout(4, 8, 8, BLOCK_SIZE),
        "output.weight": BlockLayout(1, model.output.out_features, 8, BLOCK_SIZE),
    }
    for name, mask in masks.items():
        assert torch.equal(element_mask(layouts[name], mask), element_masks[name].bool()), name
        assert 0 < int(mask.sum()) < mask.numel()
    # squash_mask left plain parameters holding zeros exactly in the pruned blocks
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        assert torch.equal(layouts[name].nonzero_block_mask(params[name]), mask), name


def test_ao_sparsifier_on_an_embedding_weight_is_refused():
    model = TinyCharLM(hidden_size=8)
    sparsifier = WeightNormSparsifier(sparsity_level=0.5, sparse_block_shape=(1, 4))
    sparsifier.prepare(model, [{"tensor_fqn": "embedding.weight"}])
    sparsifier.step()
    with pytest.raises(
        ValueError,
        match="embedding.weight: only nn.LSTM and nn.Linear weights convert to blocks, got .*Embed",
    ):
        masks_from_ao_sparsifier(sparsifier, BLOCK_SIZE)


@settings(max_examples=40, deadline=None)
@given(
    num_gates=st.sampled_from([1, 4]),
    rows_per_gate=st.integers(1, 9),
    cols=st.integers(1, 9),
    block_size=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_whole_block_masks_round_trip(num_gates, rows_per_gate, cols, block_size, seed):
    layout = BlockLayout(num_gates, rows_per_gate, cols, block_size)
    block_mask = random_block_mask(layout, torch.Generator().manual_seed(seed))
    recovered = block_mask_from_element_mask(element_mask(layout, block_mask), layout)
    assert torch.equal(recovered, block_mask)
