"""The vision LightningModule's networks and loss: parameter counts of the paper's models through the configs'
model, stochastic depth that reaches the blocks, label smoothing on mixed targets (the DeiT learning-rate rule
and schedule are tested in tests/test_schedules.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from torch.nn import functional as F

from models import hgrn_deit
from models.residual import DropPath
from vision.task import ImageClassificationTask, soft_target_loss

CONFIGS = Path(__file__).resolve().parent.parent / "vision" / "configs"


def model_from_config(name: str) -> ImageClassificationTask:
    """The config's model class with its init_args, given the data fields its DataModule would supply."""
    cfg = yaml.safe_load((CONFIGS / name).read_text())
    assert cfg["model"]["class_path"] == "vision.task.ImageClassificationTask"
    data = cfg["data"]["init_args"]
    return ImageClassificationTask(**cfg["model"]["init_args"], num_classes=data["num_classes"], in_channels=3,
                                   image_size=data["image_size"])


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("config, official, exact", [
    ("hgrn-deit-tiny.yaml", 6.11e6, 6_107_560), ("hgrn-deit-small.yaml", 23.72e6, 23_715_688),
])
def test_hgrn_deit_parameter_counts_match_the_official_models(config: str, official: float, exact: int) -> None:
    model = model_from_config(config)
    n = count(model)
    assert abs(n - official) / official < 0.01
    assert n == exact == count(hgrn_deit(model.hparams.size))
    assert model.model_name == "hgrn" and model.default_variant == f"deit-{model.hparams.size}"
    assert model.lower_bounds().shape == (12, model.d_model)


def test_transformer_baseline_is_deit_sized() -> None:
    model = model_from_config("transformer-deit-tiny.yaml")
    # DeiT-Ti has 5,717,416 parameters; ours differs by patch 14 instead of 16 and no class/position tokens
    assert abs(count(model) - 5_717_416) / 5_717_416 < 0.02
    assert model.model_name == "transformer" and model.lower_bounds() is None


def test_other_widths_build_the_same_network_as_hgrn_deit() -> None:
    custom = ImageClassificationTask(width=192, num_classes=1000, in_channels=3, image_size=224)
    reference = hgrn_deit("tiny")
    assert {k: v.shape for k, v in custom.net.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}
    assert custom.default_variant == "w192"


@pytest.mark.parametrize("backbone", ["hgrn", "transformer"])
def test_stochastic_depth_reaches_every_block(backbone: str) -> None:
    torch.manual_seed(0)
    model = ImageClassificationTask(backbone=backbone, width=16, depth=4, patch_size=4, drop_path=0.3, n_heads=2,
                                    num_classes=3, in_channels=3, image_size=8)
    drops = [m for m in model.net.backbone.modules() if isinstance(m, DropPath)]
    assert len(drops) == 8  # token mixer and channel mixer of each of the 4 blocks
    assert sorted(round(d.p, 6) for d in drops) == sorted([0.0, 0.1, 0.2, 0.3] * 2)
    # in training the deepest branch is zeroed for some samples and scaled by 1 / (1 - p) for the others
    seen = {}
    last = max(drops, key=lambda d: d.p)
    last.register_forward_hook(lambda mod, inp, out: seen.update(inp=inp[0], out=out))
    x = torch.randn(64, 3, 8, 8)
    model.train()
    model(x)
    kept = (seen["out"].abs().flatten(1).sum(1) > 0)
    assert 0 < int((~kept).sum()) < 64
    assert torch.allclose(seen["out"][kept], seen["inp"][kept] / (1 - last.p), atol=1e-6)
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_without_drop_path_training_is_deterministic() -> None:
    model = ImageClassificationTask(width=16, depth=2, patch_size=4, num_classes=3, in_channels=3, image_size=8).train()
    x = torch.randn(8, 3, 8, 8)
    assert torch.equal(model(x), model(x))


def test_patch_size_must_divide_the_image() -> None:
    with pytest.raises(ValueError, match="image_size 30 is not divisible by model.patch_size 14"):
        ImageClassificationTask(num_classes=10, in_channels=3, image_size=30)


def test_label_smoothing_on_mixed_targets_is_timms_smoothed_soft_target_loss() -> None:
    torch.manual_seed(0)
    logits, lam, eps, k = torch.randn(5, 7), 0.3, 0.1, 7
    a, b = torch.randint(0, k, (5,)), torch.randint(0, k, (5,))
    mixed = lam * F.one_hot(a, k).float() + (1 - lam) * F.one_hot(b, k).float()
    smooth = lambda y: y * (1 - eps) + eps / k  # noqa: E731  timm: one_hot(y, off=eps/k, on=1-eps+eps/k)
    timm_target = lam * smooth(F.one_hot(a, k).float()) + (1 - lam) * smooth(F.one_hot(b, k).float())
    timm_loss = (-timm_target * logits.log_softmax(-1)).sum(-1).mean()
    assert torch.allclose(soft_target_loss(logits, mixed, eps), timm_loss, atol=1e-6)
    assert torch.allclose(soft_target_loss(logits, a, eps), soft_target_loss(logits, F.one_hot(a, k).float(), eps))
