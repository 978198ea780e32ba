"""The published pipeline (docs/FIDELITY.md), item by item: each paper config's default checked directly
against values computed here, independently of the code under test, and the corrected pipeline one switch away."""
from __future__ import annotations

import copy
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch.nn import functional as F

import harness.cli
from helpers.lra_files import rgb_images, write_aan, write_acl, write_cifar, write_listops, write_pathfinder
from harness.cli import HarnessCLI
from lra.__main__ import TASKS
from lra.data import ImageDataModule, ListOpsDataModule, PathfinderDataModule, RetrievalDataModule, TextDataModule
from lra.task import RetrievalTask, SequenceClassificationTask

CONFIGS = Path(__file__).resolve().parent.parent / "lra" / "configs"
OVERLAY = CONFIGS / "overlays" / "corrected.yaml"
PAD, UNK, EOS = 0, 1, 2


def config(name: str) -> dict:
    return yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())


def model_args(name: str, **override) -> dict:
    return {**config(name)["model"]["init_args"], **override}


def data_args(name: str, **override) -> dict:
    return {**config(name)["data"]["init_args"], **override}


def corrected(args: dict) -> dict:
    return {**args, **yaml.safe_load(OVERLAY.read_text())["model"]["init_args"]}


def masked_mean(features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    return torch.stack([features[i, : int(n)].mean(0) for i, n in enumerate(lengths)])


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm()) if not a.requires_grad else rel(a.detach(), b.detach())


# -- 1. padding: scanned, as published --------------------------------------------------------------------------

def explicit_hgru(layer, z: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """Bidirectional complex HGRU by its equations, a Python loop over every position, pads included."""
    lam = gamma + (1 - gamma) * torch.sigmoid(layer.lambda_proj(z))
    c = F.silu(layer.input_proj(z))
    c = torch.complex(c[..., 0::2], c[..., 1::2]) * (1 - lam)
    rot_f, rot_r = torch.polar(torch.ones_like(layer.theta_forward), layer.theta_forward), \
        torch.polar(torch.ones_like(layer.theta_reverse), layer.theta_reverse)
    B, T, D = c.shape
    fwd, rev = torch.zeros_like(c), torch.zeros_like(c)
    h = torch.zeros(B, D, dtype=c.dtype)
    for t in range(T):
        h = lam[:, t] * rot_f * h + c[:, t]
        fwd[:, t] = h
    h = torch.zeros(B, D, dtype=c.dtype)
    for t in reversed(range(T)):
        h = lam[:, t] * rot_r * h + c[:, t]
        rev[:, t] = h
    s = fwd + rev
    return layer.out_proj(layer.norm(torch.cat([s.real, s.imag], -1)) * F.silu(layer.gate(z)))


def test_scanned_padding_equals_an_explicit_loop_over_the_padded_sequence():
    torch.manual_seed(0)
    args = model_args("listops", d_model=8, n_layers=2, norm="layer", embedding_dropout=0.0)
    assert args["padding"] == "scan"
    task = SequenceClassificationTask(**args, num_classes=10, vocab_size=18).double().eval()
    lengths = torch.tensor([11, 6, 3])
    x = torch.randint(3, 18, (3, 11))
    x[torch.arange(11)[None, :] >= lengths[:, None]] = PAD
    net = task.net
    with torch.no_grad():
        h = net.embedding(x)
        bounds = net.backbone.bounds()
        for k in range(2):
            mixer, glu = net.backbone.mixers[k], net.backbone.channel_mixers[k]
            h = h + explicit_hgru(mixer.layer, mixer.norm(h), bounds[k])
            h = glu(h)
        expected = net.head.linear(masked_mean(net.backbone.final_norm(h), lengths))
        got = task({"x": x, "lengths": lengths})
        assert torch.allclose(got, expected, rtol=1e-9, atol=1e-10)
        # the corrected pipeline differs exactly on the padded rows
        fixed = SequenceClassificationTask(**corrected(args), num_classes=10, vocab_size=18).double().eval()
        fixed.load_state_dict(task.state_dict())
        other = fixed({"x": x, "lengths": lengths})
    assert torch.allclose(other[0], got[0], rtol=1e-9, atol=1e-10)  # the longest row has no pads
    assert rel(other[1:], got[1:]) > 1e-3


# -- 2, 3. Text and Retrieval tokens ------------------------------------------------------------------------------

def test_text_characters_min_frequency_15_and_eos(tmp_path):
    # counts straddle the threshold: a 20, b 15 (kept), c 14 (unknown), d 16; one review is longer than 4,096
    long_review = "xy" * 2600
    train = {"neg": ["a" * 10 + "b" * 8 + "c" * 7, long_review], "pos": ["a" * 10 + "b" * 7 + "c" * 7 + "d" * 16]}
    test = {"neg": ["abcd?"], "pos": ["ba"]}
    write_acl(tmp_path, train, test)
    args = data_args("text", root=str(tmp_path), batch_size=2)
    dm = TextDataModule(**args)
    texts = train["neg"] + train["pos"]  # neg (label 0) first, file order
    counts = Counter()
    for t in texts:
        counts.update(t[:4095])
    kept = sorted((ch for ch, n in counts.items() if n >= 15), key=lambda ch: (-counts[ch], ch))
    tokens = ["<pad>", "<unk>", "<eos>", *kept]
    assert "c" not in kept and {"a", "b", "d", "x", "y"} <= set(kept)
    assert dm.vocab.tokens == tokens and dm.vocab_size == len(tokens)
    for i, text in enumerate(texts):
        ids, _ = dm.dataset("train")[i]
        assert ids.tolist() == [tokens.index(ch) if ch in tokens[3:] else UNK for ch in text[:4095]] + [EOS]
    assert len(dm.dataset("train")[1][0]) == 4096  # 4,095 characters + <eos>
    ids, _ = dm.dataset("test")[0]
    assert ids.tolist() == [tokens.index("a"), tokens.index("b"), UNK, tokens.index("d"), UNK, EOS]


def test_retrieval_characters_3999_plus_eos_per_document(tmp_path):
    doc = "".join(chr(ord("a") + (i * 7) % 26) for i in range(5000))
    rows = {"train": [("1", "a", "b", doc, "short one"), ("0", "c", "d", "Zq", doc[:4500])],
            "eval": [("0", "e", "f", "ab", "cd")], "test": [("1", "g", "h", doc, "é")]}
    write_aan(tmp_path, rows)
    dm = RetrievalDataModule(**data_args("retrieval", root=str(tmp_path), batch_size=2))
    chars = Counter()
    for _, _, _, t1, t2 in rows["train"]:
        chars.update(t1[:3999] + t2[:3999])
    tokens = ["<pad>", "<unk>", "<eos>", *sorted(chars, key=lambda ch: (-chars[ch], ch))]
    assert dm.vocab.tokens == tokens
    ids1, ids2, _ = dm.dataset("test")[0]
    assert len(ids1) == 4000 and ids1.tolist() == [tokens.index(ch) for ch in doc[:3999]] + [EOS]
    assert ids2.tolist() == [UNK, EOS]  # "é" never occurs in training
    ids1, ids2, _ = dm.dataset("train")[1]
    assert ids1.tolist() == [tokens.index("Z"), tokens.index("q"), EOS] and len(ids2) == 4000


# -- 4. Retrieval batching -------------------------------------------------------------------------------------

def test_retrieval_train_output_is_one_backbone_call_on_the_concatenated_batch():
    torch.manual_seed(0)
    args = model_args("retrieval", embedding_dropout=0.0)
    assert args["retrieval_batching"] == "concatenated"
    task = RetrievalTask(**args, num_classes=2, vocab_size=98).train()
    reference = copy.deepcopy(task.net)
    l1, l2 = torch.tensor([9, 4, 7]), torch.tensor([5, 12, 3])
    x1, x2 = torch.randint(3, 98, (3, 9)), torch.randint(3, 98, (3, 12))
    x1[torch.arange(9)[None, :] >= l1[:, None]] = PAD
    x2[torch.arange(12)[None, :] >= l2[:, None]] = PAD
    batch = {"x1": x1, "x2": x2, "lengths1": l1, "lengths2": l2, "y": torch.tensor([0, 1, 0])}
    got = task(batch)
    # independently: both documents padded to 12 and stacked on the batch axis, ONE backbone call (no lengths)
    both = torch.cat([F.pad(x1, (0, 3), value=PAD), x2])
    features = reference.backbone(reference.embedding(both))
    u, v = masked_mean(features[:3], l1), masked_mean(features[3:], l2)
    expected = reference.head.mlp(torch.cat([u, v, u - v, u * v], -1))
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6)
    norm = next(m for m in task.net.backbone.modules() if isinstance(m, torch.nn.BatchNorm1d))
    assert int(norm.num_batches_tracked) == 1  # running statistics updated once per step
    separate = RetrievalTask(**{**args, "retrieval_batching": "separate"}, num_classes=2, vocab_size=98).train()
    separate.net.load_state_dict(reference.state_dict())
    assert rel(separate(batch), got) > 1e-3  # two calls of B normalise differently


# -- 5. Pathfinder / Path-X pixels ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["pathfinder", "pathx", "pathfinder-transformer", "pathx-transformer"])
def test_pathfinder_pixels_lie_in_minus_one_to_one(name, tmp_path):
    args = data_args(name, root=str(tmp_path), batch_size=4, decode_workers=1)
    truth = write_pathfinder(tmp_path, args["resolution"], 5)
    images = {(int(img[0, 0]), int(img[0, 1])): img for _, img in truth.values()}
    dm = PathfinderDataModule(**args)
    seen = 0
    for batch in dm.test_dataloader():
        x = batch["x"][..., 0]
        assert x.min() >= -1.0 and x.max() <= 1.0
        for row in x:
            raw = images[(round((row[0].item() + 1) * 127.5), round((row[1].item() + 1) * 127.5))]
            expected = torch.from_numpy(raw.reshape(-1).astype(np.float32)) / 127.5 - 1.0
            assert torch.allclose(row, expected, atol=1e-6)
            seen += 1
    assert seen == len(dm.dataset("test")) > 0


# -- 6. Pad embedding -------------------------------------------------------------------------------------------

def test_pad_embedding_row_is_trained_as_published_and_frozen_when_corrected():
    x = torch.tensor([[5, 6, 7], [8, PAD, PAD]])
    batch = {"x": x, "lengths": torch.tensor([3, 1]), "y": torch.tensor([0, 1])}
    for args, trained in ((model_args("text", d_model=16), True), (corrected(model_args("text", d_model=16)), False)):
        task = SequenceClassificationTask(**args, num_classes=2, vocab_size=20)
        F.cross_entropy(task(batch), batch["y"]).backward()
        row_grad = task.net.embedding.embed.weight.grad[PAD]
        assert (row_grad.abs().sum() > 0) == trained
        assert (task.net.embedding.embed.weight[PAD].abs().sum() > 0) == trained  # frozen rows start at zero


# -- 7. Schedule past total_steps -------------------------------------------------------------------------------

def huggingface_cosine(step: int, warmup: int, total: int) -> float:
    """transformers.get_cosine_schedule_with_warmup (num_cycles 0.5), written out."""
    if step < warmup:
        return step / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 2.0 * 0.5 * progress)))


@pytest.mark.parametrize("name", ["image", "pathx", "listops-transformer"])
def test_learning_rate_follows_the_huggingface_formula_past_total_steps(name):
    args = model_args(name, d_model=8, n_layers=1)
    assert args["lr_schedule"] == "huggingface"
    fields = {"in_channels": 3, "grid": (32, 32)} if args["encoder"] == "pixel" else {"vocab_size": 18}
    task = SequenceClassificationTask(**args, num_classes=10, **fields)
    out = task.configure_optimizers()
    schedule = out["lr_scheduler"]["scheduler"]
    assert out["lr_scheduler"]["interval"] == "step"
    w, total = args["warmup_steps"], args["total_steps"]
    steps = [0, 1, w - 1, w, (w + total) // 2, total, total + 1, total + 40_000, 2 * total - w, 2 * total + 7]
    for step in steps:
        assert schedule.lr_lambdas[0](step) * args["lr"] == pytest.approx(huggingface_cosine(step, w, total) * args["lr"], abs=1e-15)
    assert schedule.get_last_lr()[0] == 0.0  # the first optimiser step runs at rate 0
    assert schedule.lr_lambdas[0](2 * total - w) == pytest.approx(1.0)  # risen again to the base rate
    held = SequenceClassificationTask(**corrected(args), num_classes=10, **fields).configure_optimizers()
    held_factor = held["lr_scheduler"]["scheduler"].lr_lambdas[0]
    assert held_factor(0) == 1 / w and held_factor(total + 40_000) == 0.0


# -- 8. Weight decay --------------------------------------------------------------------------------------------

def test_weight_decay_reaches_every_parameter():
    args = model_args("listops")
    assert args["weight_decay"] == 0.01
    task = SequenceClassificationTask(**args, num_classes=10, vocab_size=18)
    optimizer = task.configure_optimizers()["optimizer"]
    for group in optimizer.param_groups:
        group["lr"] = 0.1  # the schedule starts at 0; any rate shows the decay
    before = {name: p.detach().clone() for name, p in task.named_parameters()}
    for p in task.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()  # zero gradients: AdamW's update is the decay alone, p <- p (1 - lr wd)
    for name, p in task.named_parameters():
        assert torch.allclose(p, before[name] * (1 - 0.1 * 0.01), rtol=1e-6, atol=0), name
    # corrected: norms, biases, lower bounds and phases keep their values
    fixed = SequenceClassificationTask(**corrected(args), num_classes=10, vocab_size=18)
    opt = fixed.configure_optimizers()["optimizer"]
    undecayed = {id(p) for g in opt.param_groups if g["weight_decay"] == 0 for p in g["params"]}
    names = {n for n, p in fixed.named_parameters() if id(p) in undecayed}
    assert any("bounds" in n for n in names) and any("theta_forward" in n for n in names)
    assert all(p.ndim <= 1 or "bounds" in n for n, p in fixed.named_parameters() if id(p) in undecayed)


# -- 9. drop_last for training; evaluation on every row ---------------------------------------------------------

def test_training_drops_its_last_partial_batch_and_evaluation_keeps_every_row(tmp_path):
    write_pathfinder(tmp_path, 32, 11, batches=2)  # 22 images: 18 / 2 / 2
    dm = PathfinderDataModule(**data_args("pathfinder", root=str(tmp_path), batch_size=4, decode_workers=1))
    torch.manual_seed(0)
    sizes = [len(b["y"]) for b in dm.train_dataloader()]
    assert len(dm.dataset("train")) == 18 and sizes == [4, 4, 4, 4]
    dm3 = PathfinderDataModule(**data_args("pathfinder", root=str(tmp_path), batch_size=3, decode_workers=1))
    for loader, split in ((dm3.val_dataloader(), "val"), (dm3.test_dataloader(), "test")):
        assert sum(len(b["y"]) for b in loader) == len(dm3.dataset(split)) == 2
    fixed = PathfinderDataModule(tmp_path, batch_size=4, decode_workers=1)  # the class default keeps it
    assert [len(b["y"]) for b in fixed.train_dataloader()] == [4, 4, 4, 4, 2]


# -- 10. Image validation augmented ------------------------------------------------------------------------------

def crops_and_flips(img: np.ndarray) -> set[bytes]:
    """Every RandomCrop(32, padding 4, symmetric) + optional horizontal flip of an (H, W, C) image."""
    padded = np.pad(img, ((4, 4), (4, 4), (0, 0)), mode="symmetric")
    out = set()
    for top in range(9):
        for left in range(9):
            crop = padded[top:top + 32, left:left + 32]
            out |= {np.ascontiguousarray(crop).tobytes(), np.ascontiguousarray(crop[:, ::-1]).tobytes()}
    return out


def test_image_validation_batches_are_augmented_when_asked(tmp_path):
    raw = write_cifar(tmp_path)
    args = data_args("image", root=str(tmp_path), batch_size=5)
    assert args["augment"] and args["augment_val"]
    torch.manual_seed(0)
    dm = ImageDataModule(**args)
    plain = ImageDataModule(tmp_path, grayscale=False, pixel_scale="unit")  # same seeded split, no augmentation
    changed = 0
    for i in range(len(dm.dataset("val"))):
        aug, plain_img = dm.dataset("val")[i][0].numpy(), plain.dataset("val")[i][0].numpy()
        assert aug.reshape(32, 32, 3).tobytes() in crops_and_flips(plain_img.reshape(32, 32, 3))
        changed += int(not np.array_equal(aug, plain_img))
    assert changed >= 7  # no crop and no flip has probability 1/162 per image
    test_images = rgb_images(raw["test_batch"][0])
    for i in range(3):  # the test split is never augmented
        assert np.array_equal(dm.dataset("test")[i][0].numpy().reshape(32, 32, 3), test_images[i])
    clean = ImageDataModule(**{**args, "augment_val": False})
    assert all(np.array_equal(clean.dataset("val")[i][0].numpy(), plain.dataset("val")[i][0].numpy()) for i in range(5))


# -- 11. ListOps truncation keeps <eos> ---------------------------------------------------------------------------

def test_listops_truncation_keeps_eos(tmp_path):
    source = "( ( ( ( ( [MED 1 ) 2 ) 8 ) 9 ) ] )"
    write_listops(tmp_path, {s: [(source, 5), ("3", 3)] for s in ("train", "val", "test")})
    tokens = source.replace("(", " ").replace(")", " ").replace("]", "X").split()  # [MED 1 2 8 9 X
    args = data_args("listops", root=str(tmp_path), max_length=5)
    assert args["truncation"] == "keep_eos"
    with pytest.warns(UserWarning, match="1 row\\(s\\) truncated to 5"):
        dm = ListOpsDataModule(**args)
        ids, _ = dm.dataset("train")[0]
    vocab = dm.vocab.tokens
    assert ids.tolist() == [vocab.index(t) for t in tokens[:4]] + [EOS]
    assert dm.dataset("train")[1][0].tolist() == [vocab.index("3"), EOS]
    with pytest.warns(UserWarning):
        cut = ListOpsDataModule(**{**args, "truncation": "cut"}).dataset("train")[0][0]
    assert cut.tolist() == [vocab.index(t) for t in tokens[:5]]


# -- 12. Precision ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [("listops", "32-true"), ("text-transformer", "32-true"),
                                            ("listops-tiny", "bf16-mixed")])
def test_paper_configs_train_in_fp32_even_on_gpus(name, expected, tmp_path, monkeypatch):
    monkeypatch.setattr(harness.cli, "_uses_cuda", lambda accelerator: True)  # as on a GPU machine
    cli = HarnessCLI(SequenceClassificationTask, TASKS, run=False, args=[
        "--config", str(CONFIGS / f"{name}.yaml"), "--data.init_args.root", str(tmp_path),
        "--run.dir", str(tmp_path / "run"), "--trainer.accelerator", "cpu"])
    assert cli.trainer.precision == expected


# -- parameter counts with the published vocabularies ----------------------------------------------------------

@pytest.mark.parametrize("name, fields, expected", [
    ("text", {"vocab_size": 135, "num_classes": 2}, 683_394),
    ("listops", {"vocab_size": 18, "num_classes": 10}, 66_250),
    ("retrieval", {"vocab_size": 98, "num_classes": 2}, 132_290),
    ("image", {"in_channels": 3, "num_classes": 10, "grid": (32, 32)}, 15_798_282),
    ("pathfinder", {"in_channels": 1, "num_classes": 2, "grid": (32, 32)}, 999_170),
    ("pathx", {"in_channels": 1, "num_classes": 2, "grid": (128, 128)}, 253_826),
])
def test_paper_configs_have_the_published_parameter_counts(name, fields, expected):
    spec = config(name)
    cls = RetrievalTask if spec["model"]["class_path"].endswith("RetrievalTask") else SequenceClassificationTask
    for args in (model_args(name), corrected(model_args(name))):
        assert sum(p.numel() for p in cls(**args, **fields).parameters()) == expected


# -- every paper config and its Transformer sibling default to the published pipeline ---------------------------

@pytest.mark.parametrize("task", TASKS)
def test_paper_config_and_transformer_sibling_share_the_published_pipeline(task):
    for name in (task, f"{task}-transformer"):
        spec = config(name)
        init, data = spec["model"]["init_args"], spec["data"]["init_args"]
        assert (init["padding"], init["lr_schedule"], init["weight_decay_on"]) == ("scan", "huggingface", "all"), name
        assert init.get("pad_embedding", "trained") == "trained" and data["drop_last"] is True, name
        assert spec["trainer"]["precision"] == "32-true", name
    # that the two share their data and trainer sections is tests/test_config_pairs.py's


# -- run records carry the switches; the paper suite runs both pipelines --------------------------------------

PUBLISHED_LISTOPS = {"max_length": 2048, "append_eos": True, "truncation": "keep_eos", "drop_last": True,
                     "padding": "scan", "lr_schedule": "huggingface", "weight_decay_on": "all",
                     "pad_embedding": "trained", "precision": "32-true"}


@pytest.mark.parametrize("overlay", [False, True], ids=["published", "corrected"])
def test_run_record_carries_the_pipeline_switches(overlay, tmp_path):
    import json

    from lra.prepare import main as prepare

    data = tmp_path / "data"
    prepare(["listops", "--root", str(data), "--size", "60", "--min-length", "20", "--max-length", "40", "--quiet"])
    run_dir = tmp_path / "run"
    extra = ["--config", str(OVERLAY)] if overlay else []
    HarnessCLI(SequenceClassificationTask, TASKS, args=[
        "fit", "--config", str(CONFIGS / "listops.yaml"), *extra, "--data.init_args.root", str(data),
        "--data.init_args.batch_size", "8", "--run.dir", str(run_dir), "--trainer.fast_dev_run", "1",
        "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false"])
    record = json.loads((run_dir / "record.json").read_text())
    expected = dict(PUBLISHED_LISTOPS)
    if overlay:
        expected.update(padding="identity", lr_schedule="held", weight_decay_on="weights", pad_embedding="frozen")
    assert record["status"] == "complete" and record["pipeline"] == expected


def test_paper_suite_lists_published_and_corrected_rows(capsys):
    import run_all
    from results.names import config_label

    assert run_all.main(["--suite", "paper", "--dry-run", "--runs-root", "/nonexistent"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for task in TASKS:
        for variant in ("cumsoftmax", "cumsoftmax-corrected"):
            header = next(i for i, line in enumerate(lines) if f"] {task}/hgrn-{variant}/seed0 " in line)
            command = lines[header + 1]
            assert f"lra/configs/{task}.yaml" in command
            assert ("overlays/corrected.yaml" in command) == variant.endswith("corrected")
            assert ("augment_val false" in command) == (task == "image" and variant.endswith("corrected"))
    assert config_label("hgrn", "cumsoftmax-corrected") == "HGRN (cumsoftmax), corrected pipeline"
    assert config_label("hgrn", "cumsoftmax") == "HGRN (cumsoftmax)"


def test_unknown_switch_values_are_rejected_at_construction():
    with pytest.raises(ValueError, match="lr_schedule must be one of held, huggingface"):
        SequenceClassificationTask(lr_schedule="linear", num_classes=2, vocab_size=10)
    with pytest.raises(ValueError, match="padding must be one of identity, scan"):
        SequenceClassificationTask(padding="mask", num_classes=2, vocab_size=10)
    with pytest.raises(ValueError, match="retrieval_batching must be"):
        RetrievalTask(retrieval_batching="one", num_classes=2, vocab_size=10)
    with pytest.raises(ValueError, match="truncation must be one of"):
        ListOpsDataModule("/nonexistent", truncation="drop")
    with pytest.raises(ValueError, match="augment_val=True .* needs augment=True"):
        ImageDataModule("/nonexistent", augment_val=True)
