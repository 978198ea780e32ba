"""How far apart the published and the corrected pipeline put a network's outputs (docs/FIDELITY.md).

    python benchmarks/pipeline_switches.py [--batch 8] [--seed 0]

Paper-width networks from lra/configs (random initial weights, embedding dropout off), the same weights under
both settings of a switch, one padded batch of random tokens with lengths drawn over the task's range. Prints
the relative L2 distance of the outputs: padding ``scan`` vs ``identity`` (ListOps, Text, Retrieval) and
retrieval batching ``concatenated`` vs ``separate`` with train-mode BatchNorm. Trained weights move these
numbers; the order of magnitude is what to read.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml

from lra.task import RetrievalTask, SequenceClassificationTask

CONFIGS = Path(__file__).resolve().parent.parent / "lra" / "configs"


def model_args(name: str, **override) -> dict:
    spec = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    return {**spec["model"]["init_args"], "embedding_dropout": 0.0, **override}


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def padded(batch: int, shortest: int, longest: int, vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.randint(shortest, longest + 1, (batch,))
    lengths[0] = longest
    x = torch.randint(3, vocab, (batch, longest))
    x[torch.arange(longest)[None] >= lengths[:, None]] = 0
    return x, lengths


def twin(cls: type, args: dict, fields: dict, **switch) -> tuple:
    """The published network and a copy with the same weights and one switch changed."""
    published = cls(**args, **fields)
    other = cls(**{**args, **switch}, **fields)
    other.load_state_dict(published.state_dict())
    return published, other


@torch.no_grad()
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    print("| task | switch | relative L2 of the outputs |\n|---|---|---|")
    for name, vocab, shortest, longest, classes in (("listops", 18, 500, 2000, 10), ("text", 135, 300, 4096, 2)):
        published, fixed = twin(SequenceClassificationTask, model_args(name), {"num_classes": classes, "vocab_size": vocab},
                                padding="identity")
        published.eval(), fixed.eval()
        x, lengths = padded(a.batch, shortest, longest, vocab)
        batch = {"x": x, "lengths": lengths}
        print(f"| {name} | padding scan vs identity (logits) | {rel(published(batch), fixed(batch)):.3g} |")
    fields = {"num_classes": 2, "vocab_size": 98}
    x1, l1 = padded(a.batch, 500, 4000, 98)
    x2, l2 = padded(a.batch, 500, 3000, 98)
    batch = {"x1": x1, "x2": x2, "lengths1": l1, "lengths2": l2}
    published, fixed = twin(RetrievalTask, model_args("retrieval"), fields, padding="identity")
    published.eval(), fixed.eval()
    print(f"| retrieval | padding scan vs identity (logits, eval) | {rel(published(batch), fixed(batch)):.3g} |")
    published, separate = twin(RetrievalTask, model_args("retrieval"), fields, retrieval_batching="separate")
    published.train(), separate.train()
    print(f"| retrieval | one call on 2B vs two calls of B (logits, train-mode BatchNorm) | "
          f"{rel(published(batch), separate(batch)):.3g} |")


if __name__ == "__main__":
    main()
