"""Each stage runs on tiny synthetic data and its loss falls; faults are skipped, counted and stop the run."""

from __future__ import annotations

import json
import math

import pytest
import torch

import videomae.training.engine as engine
from videomae.errors import ConfigError
from videomae.factory import create_model
from videomae.training import DivergenceError, list_checkpoints, run
from videomae.training.state import check_finite

FAST_FT = [
    "data.synthetic.num_videos=8",
    "data.num_sample=1",
    "optim.layer_decay=1.0",
    "epochs=40",
    "val_every=0",
    "test_at_end=false",
]


def mean(values):
    return sum(values) / len(values)


def test_tiny_pretraining_loss_falls_and_writes_everything(tiny_recipe, tmp_path):
    result = run(tiny_recipe("tiny", tmp_path, "max_steps=24", "save_every=8", "keep_last=2"))
    assert result.step == 24 and len(result.losses) == 24
    assert mean(result.losses[-6:]) < mean(result.losses[:6]) - 0.05
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == list(range(1, 25))
    assert {"step", "loss", "lr", "grad_norm", "clips_per_s", "weight_decay"} <= set(lines[0])
    assert [p.rsplit("_", 1)[1] for p in list_checkpoints(tmp_path)] == ["00000016", "00000024"]
    assert json.loads((tmp_path / "config.json").read_text())["stage"] == "pretrain"


def test_tiny_finetuning_loss_falls_and_evaluates(tiny_recipe, tmp_path):
    result = run(tiny_recipe("tiny_finetune", tmp_path, *FAST_FT, "test_at_end=true", "val_every=20"))
    assert mean(result.losses[-8:]) < mean(result.losses[:8]) - 0.05
    assert result.test["num_videos"] == 8 and result.test["num_views"] == 8 * 4  # 2 clips x 2 crops
    assert (tmp_path / "test" / "predictions.jsonl").read_text().count("\n") == 8
    metrics = json.loads((tmp_path / "test" / "metrics.json").read_text())
    assert len(metrics["confusion"]) == 4 and len(metrics["per_class_acc1"]) == 4
    assert len((tmp_path / "val_metrics.jsonl").read_text().splitlines()) == 2
    assert (tmp_path / "checkpoints" / "best" / "model.safetensors").exists()


def test_gradient_accumulation_matches_a_larger_batch(tiny_recipe, tmp_path):
    big = run(tiny_recipe("tiny", tmp_path / "big", "max_steps=4", "batch_size=8"))
    accumulated = run(tiny_recipe("tiny", tmp_path / "acc", "max_steps=4", "batch_size=4", "accum_steps=2"))
    assert accumulated.losses == pytest.approx(big.losses, rel=1e-4)


def test_linear_probe_trains_only_the_head(tiny_recipe, tmp_path, monkeypatch):
    built = {}
    real = engine.build_task

    def spy(*args, **kwargs):
        task = real(*args, **kwargs)
        built["before"] = {k: v.clone() for k, v in task.model.state_dict().items()}
        built["model"] = task.model
        return task

    monkeypatch.setattr(engine, "build_task", spy)
    encoder = run(tiny_recipe("tiny", tmp_path / "pt", "max_steps=1")).output_dir
    run(tiny_recipe("tiny_probe", tmp_path / "probe", *FAST_FT, "max_steps=5", f"pretrained={encoder}"))
    after = built["model"].state_dict()
    changed = {k for k, v in after.items() if not torch.equal(v, built["before"][k])}
    assert changed == {"head.weight", "head.bias"}


def test_stages_that_need_weights_refuse_to_start_without_them(tiny_recipe, tmp_path):
    for recipe, stage in (("tiny_probe", "probe"), ("tiny_finetune", "eval")):
        with pytest.raises(ConfigError, match=f"the {stage} stage .* set pretrained="):
            run(tiny_recipe(recipe, tmp_path / stage, f"stage={stage}"))
        assert not (tmp_path / stage).exists()


def test_distillation_runs_with_a_frozen_teacher(tiny_recipe, tmp_path, monkeypatch):
    import videomae.training.stages as stages

    cfg = tiny_recipe("tiny_distill", tmp_path, *FAST_FT, "distill.teacher=teacher.pth", "max_steps=12")
    teacher = create_model(
        "vit_small_patch16_224",
        img_size=32,
        num_frames=4,
        num_classes=4,
        **{k: v for k, v in cfg.model_args.items() if k != "drop_path_rate"},
    )
    teacher_state = {k: v.clone() for k, v in teacher.state_dict().items()}
    real = stages.create_model
    monkeypatch.setattr(
        stages,
        "create_model",
        lambda name, pretrained=None, **kw: (
            teacher if pretrained == "teacher.pth" else real(name, pretrained=pretrained, **kw)
        ),
    )
    result = run(cfg)
    assert all(math.isfinite(loss) for loss in result.losses)
    assert mean(result.losses[-4:]) < mean(result.losses[:4])
    assert all(torch.equal(v, teacher_state[k]) for k, v in teacher.state_dict().items())


def poison_losses(monkeypatch, bad_calls: set[int]):
    """Make the stage loss return NaN on the given call numbers (0-based)."""
    real = engine.build_task
    calls = {"n": 0}

    def build(*args, **kwargs):
        task = real(*args, **kwargs)
        loss = task.loss

        def poisoned(model, batch, generator):
            value = loss(model, batch, generator)
            calls["n"] += 1
            return value * math.nan if calls["n"] - 1 in bad_calls else value

        task.loss = poisoned
        return task

    monkeypatch.setattr(engine, "build_task", build)


def test_non_finite_loss_skips_the_step_and_is_counted(tiny_recipe, tmp_path, monkeypatch):
    poison_losses(monkeypatch, {2, 5})
    result = run(tiny_recipe("tiny", tmp_path, "max_steps=8"))
    assert result.skipped == 2
    assert [i for i, loss in enumerate(result.losses) if loss is None] == [2, 5]
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lines[2]["stepped"] is False and lines[2]["grad_norm"] is None and lines[3]["stepped"] is True


def test_consecutive_non_finite_losses_stop_the_run(tiny_recipe, tmp_path, monkeypatch):
    poison_losses(monkeypatch, {3, 4, 5})
    with pytest.raises(DivergenceError, match="3 optimizer steps in a row"):
        run(tiny_recipe("tiny", tmp_path, "max_steps=8", "max_nonfinite=3"))
    assert list_checkpoints(tmp_path) == []


def test_a_non_finite_checkpoint_is_never_written():
    with pytest.raises(DivergenceError, match="no checkpoint written"):
        check_finite({"w": torch.tensor([1.0, math.inf])})


def tiny_classifier():
    torch.manual_seed(0)
    return create_model(
        "vit_small_patch16_224",
        img_size=32,
        patch_size=8,
        num_frames=4,
        embed_dim=32,
        depth=1,
        num_heads=4,
        num_classes=3,
    )


def test_model_ema_follows_the_timm_formula():
    model = tiny_classifier()
    ema = engine.ModelEma(model, decay=0.75)
    start = {k: v.clone() for k, v in ema.module.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model)
    for key, value in ema.module.state_dict().items():
        torch.testing.assert_close(value, 0.75 * start[key] + 0.25 * model.state_dict()[key])


def test_the_ema_of_a_compiled_model_runs_the_averaged_weights():
    """The engine's order: checkpointing and compile per block (`parallelize`), then the EMA, built afresh from
    the config. After a step its outputs are those of the averaged weights, not the trained model's."""
    from videomae.training.distributed import Dist
    from videomae.training.parallelize import parallelize

    cpu = Dist(0, 1, 0, torch.device("cpu"))
    model = parallelize(tiny_classifier(), cpu, parallel="ddp", activation_checkpointing="selective", compile=True)
    ema = engine.ModelEma(model, decay=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    video = torch.randn(2, 3, 4, 32, 32)
    model(video).logsumexp(-1).sum().backward()
    optimizer.step()
    ema.update(model)
    model.eval()
    live, averaged = model(video), ema.module(video)
    assert not torch.allclose(averaged, live, atol=1e-4)
    plain = tiny_classifier().eval()
    plain.load_state_dict(ema.module.state_dict())
    torch.testing.assert_close(averaged, plain(video), atol=0, rtol=0)


def test_ema_run_exports_the_averaged_model(tiny_recipe, tmp_path):
    run(tiny_recipe("tiny_finetune", tmp_path, *FAST_FT, "max_steps=3", "ema_decay=0.5"))
    ema = create_model(pretrained=str(tmp_path / "export_ema"))
    trained = create_model(pretrained=str(tmp_path / "export"))
    differs = [not torch.equal(a, b) for a, b in zip(ema.state_dict().values(), trained.state_dict().values())]
    assert any(differs)
