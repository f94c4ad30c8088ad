"""The pieces of the long CPU run (issue 18): deep supervision, the weight average, v2 appearance augmentation,
count-weighted crops, the stratified selection set, prefetching, and an exact resume with all of them on."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from unetpp.data.paths import read_ids
from unetpp.data.selection import (
    crowding_classes,
    resolve_selection,
    shipped_selection_path,
    size_class,
    stratified_selection,
)
from unetpp.errors import CheckpointError, InputError, OutputError
from unetpp.model.checkpoint import load_checkpoint, save_checkpoint
from unetpp.train.appearance_v2 import AppearanceV2, augment_crop_v2
from unetpp.train.ema import WeightEMA
from unetpp.train.instance_data import InstanceCropDataset, build_instance_data, crops_per_image, nucleus_counts
from unetpp.train.instance_loop import crop_loader, train_instance
from unetpp.train.instance_model import HEADS, ChannelBCEDice, InstanceTrainConfig, init_instance_model
from unetpp.train.prefetch import prefetch
from unetpp.train.sampling import EpochBatchSampler


def _cfg(**kw) -> InstanceTrainConfig:
    base = dict(epochs=2, batch_size=2, crop=32, view_size=32, holdout=2, init="none", target_area=60.0, seed=3,
                deep_supervision=True, augment_preset="v2", ema=0.9, warmup_epochs=1, crop_area=400.0,
                crop_nuclei=2.0, max_crops=3)
    return InstanceTrainConfig(**{**base, **kw})


def _three_outputs(tmp_path):
    from unetpp.config import ModelConfig
    from unetpp.model.network import build_model

    path = tmp_path / "three.pt"
    save_checkpoint(path, build_model(ModelConfig(num_classes=3)))
    return path


def test_deep_supervision_init_copies_final_into_every_head(tmp_path):
    src = init_instance_model("none", seed=5)
    path = tmp_path / "instance.pt"
    save_checkpoint(path, src)
    ds = init_instance_model(str(path), seed=0, deep_supervision=True)
    for head in HEADS:
        assert torch.equal(getattr(ds, head).weight, src.final.weight)
        assert torch.equal(getattr(ds, head).bias, src.final.bias)
    ds.eval(), src.eval()
    x = torch.randn(1, 3, 32, 32) * 0.01
    with torch.no_grad():  # the full-depth head of the copy is the source model
        assert torch.equal(ds(x)[-1], src(x))
    save_checkpoint(tmp_path / "ds.pt", ds)
    plain = init_instance_model(str(tmp_path / "ds.pt"), seed=0, deep_supervision=False).eval()
    with torch.no_grad():  # without deep supervision the full-depth head becomes `final`
        assert torch.equal(plain(x), ds(x)[-1])
    with pytest.raises(CheckpointError, match="1- or 2-output"):
        init_instance_model(str(_three_outputs(tmp_path)), seed=0)
    guide_init = init_instance_model("shipped", seed=0, deep_supervision=True)  # a 1-output guide checkpoint
    assert guide_init.final4.weight.shape == (2, 32, 1, 1)
    assert torch.equal(guide_init.final1.weight[:1], load_checkpoint(None).model.final.weight)


def test_deep_supervision_loss_is_the_mean_over_heads():
    torch.manual_seed(0)
    heads = [torch.randn(2, 2, 8, 8) for _ in range(4)]
    target = (torch.rand(2, 2, 8, 8) > 0.5).float()
    crit = ChannelBCEDice(2.0)
    each = [crit.parts(h, target) for h in heads]
    fg, border = crit.parts(heads, target)
    assert float(fg) == pytest.approx(sum(float(e[0]) for e in each) / 4)
    assert float(border) == pytest.approx(sum(float(e[1]) for e in each) / 4)


def test_weight_average_follows_the_formula():
    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema = WeightEMA(model, 0.5)
    with torch.no_grad():
        model.weight.fill_(3.0)
    ema.update(model)  # 0.5 * 1 + 0.5 * 3
    with torch.no_grad():
        model.weight.fill_(5.0)
    ema.update(model)  # 0.5 * 2 + 0.5 * 5
    avg = ema.averaged(model)
    assert torch.allclose(avg.weight, torch.full((1, 2), 3.5)) and torch.equal(model.weight, torch.full((1, 2), 5.0))
    again = WeightEMA(model, 0.9)
    again.load_state_dict(ema.state_dict())
    assert again.decay == 0.5 and again.steps == 2 and torch.equal(again.shadow["weight"], ema.shadow["weight"])


def test_v2_augmentation_depends_only_on_the_key_and_moves_targets_only_geometrically():
    rng_img = np.random.default_rng(0)
    img = rng_img.integers(0, 60, (32, 32, 3), dtype=np.uint8)
    img[8:16, 8:16] = 200
    targets = np.zeros((2, 32, 32), np.float32)
    targets[0, 8:16, 8:16] = 1
    a = augment_crop_v2(img, targets, np.random.default_rng(7))
    b = augment_crop_v2(img, targets, np.random.default_rng(7))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert a[0].dtype == np.uint8 and a[0].shape == img.shape
    moved = [np.rot90(targets, k, axes=(1, 2)) for k in range(4)]
    moved += [m[:, :, ::-1] for m in moved]
    assert any(np.array_equal(a[1], m) for m in moved)  # the targets are a rotation/flip of the originals
    off = AppearanceV2(**{f: 0.0 for f in AppearanceV2.__dataclass_fields__ if f.startswith("p_")})
    plain, _ = augment_crop_v2(img, targets, np.random.default_rng(7), off)
    assert sorted(np.unique(plain).tolist()) == sorted(np.unique(img).tolist())  # no change applied: pixels kept


def test_count_weighted_crops_add_one_per_n_nuclei(tiny_stage1):
    root, ids = tiny_stage1
    data = build_instance_data(root, ids[:4], target_area=60.0, progress=False)
    px = np.array([lab.size for lab in data.labels], np.float64)
    n = nucleus_counts(data)
    assert n.tolist() == [len(np.unique(lab)) - 1 for lab in data.labels]
    got = crops_per_image(data, crop_area=1e9, max_crops=50, crop_nuclei=2.0)
    assert got.tolist() == (1 + np.ceil(n / 2.0)).astype(int).tolist()  # ceil(px / 1e9) = 1
    assert crops_per_image(data, crop_area=float(px.min()), max_crops=2, crop_nuclei=1.0).max() == 2


def test_stratified_selection_takes_a_share_of_every_stratum():
    strata = {f"a{i}": "A" for i in range(8)} | {f"b{i}": "B" for i in range(4)} | {"c0": "C"}
    chosen = stratified_selection(strata, 0.25, seed=1, always=["a7"])
    assert "a7" in chosen and "c0" not in chosen  # a lone id stays in the fit set
    assert sum(i.startswith("a") for i in chosen) == 2 and sum(i.startswith("b") for i in chosen) == 1
    assert chosen == stratified_selection(strata, 0.25, seed=1, always=["a7"])
    assert size_class(256, 256) == "small" and size_class(520, 696) == "large"
    assert crowding_classes({"x": 1, "y": 50, "z": 500}) == {"x": "sparse", "y": "medium", "z": "crowded"}
    with pytest.raises(InputError, match="between 0 and 1"):
        stratified_selection(strata, 1.5, seed=1)


def test_shipped_selection_set_is_a_quarter_of_the_train_ids(dsb_root):
    train = read_ids(dsb_root / "train_ids.txt")
    sel = read_ids(shipped_selection_path())
    fit, held = resolve_selection("shipped", train)
    assert set(held) == set(sel) and not set(fit) & set(sel) and len(fit) + len(held) == len(train)
    assert 0.22 < len(sel) / len(train) < 0.28
    assert set(train[-64:]) <= set(sel)  # the previous model's held-out ids: a clean subset for comparisons
    assert not set(sel) & set(read_ids(dsb_root / "val_ids.txt"))
    with pytest.raises(InputError, match="not"):
        resolve_selection("shipped", train[:100])


def test_prefetch_keeps_order_raises_and_stops():
    assert list(prefetch(iter(range(20)), 3)) == list(range(20))
    assert list(prefetch(range(5), 0)) == list(range(5))

    def broken():
        yield 1
        raise ValueError("bad crop")

    with pytest.raises(ValueError, match="bad crop"):
        list(prefetch(broken(), 2))
    before = threading.active_count()
    for k in prefetch(iter(range(1000)), 2):
        if k == 3:
            break
    assert threading.active_count() <= before


def test_long_run_recipe_resumes_to_the_uninterrupted_state(tiny_stage1, tmp_path):
    root, ids = tiny_stage1
    cfg, kw = _cfg(), dict(progress=False, verbose=False, keep_epochs=True)
    straight = train_instance(cfg, root, tmp_path / "a", ids[:8], **kw)
    assert straight["crops_per_epoch"] > 6  # count- and area-weighted: more crops than images
    train_instance(cfg, root, tmp_path / "b", ids[:8], time_limit_s=0, **kw)
    train_instance(cfg, root, tmp_path / "b", ids[:8], resume=True, **kw)
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    for k, v in a["ema"]["shadow"].items():
        assert torch.equal(v, b["ema"]["shadow"][k]), k
    assert [r["lr"] for r in a["log"]] == pytest.approx([cfg.lr * 0.1, cfg.lr])  # warm-up, then the cosine
    latest = load_checkpoint(tmp_path / "a" / "latest.pt")
    assert latest.config.deep_supervision and latest.config.num_classes == 2
    for k, v in latest.model.named_parameters():  # what is saved is the weight average
        assert torch.equal(v, a["ema"]["shadow"][k]), k
    assert (tmp_path / "a" / "epochs" / "epoch_002.pt").is_file()
    assert a["log"][-1]["heldout_fg_iou_d1"] >= 0.0
    ds = InstanceCropDataset(build_instance_data(root, ids[:2], 60.0, progress=False), 1, 32,
                             modality=AppearanceV2())
    assert ds[(0, 0)][0].shape == (3, 32, 32)


def test_crop_worker_processes_give_the_same_batches(tiny_stage1):
    root, ids = tiny_stage1
    data = build_instance_data(root, ids[:4], target_area=60.0, progress=False)
    ds = InstanceCropDataset(data, 3, 32, modality=AppearanceV2())
    assert ds.data.labels == []  # what the workers receive carries no label images
    batches = {}
    for workers in (0, 2):
        sampler = EpochBatchSampler(len(ds), 2, seed=3)
        loader = crop_loader(ds, sampler, workers, pin=False)
        got = []
        for epoch in (0, 1):  # persistent workers follow the sampler's epoch
            sampler.set_epoch(epoch)
            got += [x for x, _ in loader]
        batches[workers] = got
    assert len(batches[0]) == 4
    for a, b in zip(batches[0], batches[2], strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(batches[0][0], batches[0][2])  # epoch 1 draws other crops


def test_a_named_cache_is_shared_and_a_foreign_file_there_is_refused(tiny_stage1, tmp_path):
    root, ids = tiny_stage1
    cache = tmp_path / "shared.npz"
    first = build_instance_data(root, ids[:3], 60.0, cache=cache, progress=False, replace_stale=False)
    again = build_instance_data(tmp_path / "absent", ids[:3], 60.0, cache=cache, progress=False,
                                replace_stale=False)  # read from the cache: the images are not needed
    assert all(np.array_equal(a, b) for a, b in zip(first.targets, again.targets, strict=True))
    notes = tmp_path / "notes.npz"
    notes.write_bytes(b"my own file")
    with pytest.raises(OutputError, match="another file"):
        build_instance_data(root, ids[:3], 60.0, cache=notes, progress=False, replace_stale=False)
    assert notes.read_bytes() == b"my own file"
