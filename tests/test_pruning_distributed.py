"""Under torch.distributed every rank ends with rank 0's masks (gloo, 2 CPU processes)."""

import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from tiny_language_model import TinyCharLM, batches, language_model_loss, synthetic_characters
from torch.nn.parallel import DistributedDataParallel

from sparse_rnn.pruning import GradualPruner, prunable_weights

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="needs the gloo backend"
)

WORLD_SIZE = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_rank(rank: int, port: int, result_dir: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD_SIZE
    )
    try:
        torch.set_num_threads(1)
        # Different weights on each rank, no DDP: masks must still come from rank 0.
        torch.manual_seed(100 + rank)
        loose = TinyCharLM(hidden_size=8)
        loose_pruner = GradualPruner(loose, 0.5, 4, end_step=0, schedule="one_shot")
        loose_pruner.step()

        # DDP training with different data per rank.
        torch.manual_seed(0)
        model = DistributedDataParallel(TinyCharLM(hidden_size=8))
        optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
        pruner = GradualPruner(model, 0.75, 4, end_step=6, frequency=2, optimizer=optimizer)
        data = batches(synthetic_characters(200, seed=rank), seq_len=8, batch_size=2)
        for step in range(8):
            optimizer.zero_grad()
            language_model_loss(model, data[step % len(data)]).backward()
            optimizer.step()
            pruner.step()
        torch.save(
            {
                "loose_masks": loose_pruner.block_masks(),
                "loose_weights": loose.state_dict(),
                "ddp_masks": pruner.block_masks(),
                "ddp_weights": model.module.state_dict(),
            },
            f"{result_dir}/rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


def test_masks_are_identical_on_every_rank(tmp_path):
    mp.spawn(run_rank, args=(free_port(), str(tmp_path)), nprocs=WORLD_SIZE, join=True)
    results = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(WORLD_SIZE)]

    # The loose models differ, so without the broadcast their masks would differ too.
    weights = [r["loose_weights"]["lstm.weight_hh_l0"] for r in results]
    assert not torch.equal(weights[0], weights[1])
    layouts = {n: t.layout for n, t in prunable_weights(TinyCharLM(hidden_size=8), 4).items()}
    for name, mask in results[0]["loose_masks"].items():
        assert torch.equal(results[1]["loose_masks"][name], mask), name
        # Rank 1 zeroed its own weights where rank 0's mask prunes.
        kept_on_rank_1 = layouts[name].nonzero_block_mask(results[1]["loose_weights"][name])
        assert torch.equal(kept_on_rank_1, mask), name

    for name, mask in results[0]["ddp_masks"].items():
        assert torch.equal(results[1]["ddp_masks"][name], mask), name
        assert 0 < int(mask.sum()) < mask.numel()
