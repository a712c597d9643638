import copy

import pytest
import torch
import torch.nn.functional as F

from tests.models.tiny import TINY
from videomae import create_model
from videomae.errors import ConfigError
from videomae.masking import make_mask
from videomae.training.config import load_recipe
from videomae.training.objective import pretraining_loss
from videomae.training.parallelize import apply_activation_checkpointing, apply_compile

TINY = dict(TINY, decoder_depth=2)  # two decoder blocks: checkpointing wraps each


def _masks(batch: int = 2):
    generator = torch.Generator().manual_seed(0)
    encoder_mask = make_mask("tube", batch, (2, 4, 4), 0.75, generator=generator)
    decoder_mask = make_mask("running_cell", batch, (2, 4, 4), 0.5, generator=generator)
    return encoder_mask, decoder_mask


def _pretrain_step(model, video, dtype=None):
    """Output and parameter gradients of the pretraining loss (dtype: autocast)."""
    encoder_mask, decoder_mask = _masks(video.shape[0])
    torch.manual_seed(1)  # the same drop-path draws for every model
    with torch.autocast(video.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        out = model(video, encoder_mask, decoder_mask)
        loss = pretraining_loss(out, video, encoder_mask, decoder_mask, 2, 8)
    loss.backward()
    return out, {name: p.grad for name, p in model.named_parameters()}


def _classifier_step(model, video, dtype=None):
    torch.manual_seed(1)
    with torch.autocast(video.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        out = model(video)
        loss = F.cross_entropy(out.float(), torch.tensor([0, 3], device=video.device))
    loss.backward()
    return out, {name: p.grad for name, p in model.named_parameters()}


STEPS = {"pretrain_videomae_small_patch16_224": _pretrain_step, "vit_small_patch16_224": _classifier_step}


def _model(name: str, **overrides):
    torch.manual_seed(0)
    return create_model(name, **TINY, **({"num_classes": 5} if name.startswith("vit") else {}), **overrides)


@pytest.mark.parametrize("mode", ["selective", "full"])
@pytest.mark.parametrize("name", sorted(STEPS))
def test_activation_checkpointing_gives_the_same_outputs_and_gradients(name, mode):
    """Exactly, in training mode with drop-path: the recomputed blocks must redraw the same random numbers."""
    plain = _model(name, drop_path_rate=0.2)
    checkpointed = copy.deepcopy(plain)
    apply_activation_checkpointing(checkpointed, mode)
    assert [n for n, _ in checkpointed.named_parameters()] == [n for n, _ in plain.named_parameters()]
    video = torch.randn(2, 3, 4, 32, 32)
    out_plain, grads_plain = STEPS[name](plain, video)
    out_ac, grads_ac = STEPS[name](checkpointed, video)
    torch.testing.assert_close(out_ac, out_plain, atol=0, rtol=0)
    for key, grad in grads_plain.items():
        torch.testing.assert_close(grads_ac[key], grad, atol=0, rtol=0, msg=key)


def test_a_copy_of_a_checkpointed_model_runs_its_own_weights():
    """A deep copy of a checkpointed model (a user's) must not call back into the original's blocks."""
    model = _model("vit_small_patch16_224")
    apply_activation_checkpointing(model, "selective")
    twin = copy.deepcopy(model)
    with torch.no_grad():
        twin.blocks[0].mlp.fc2.weight.mul_(2.0)
    video = torch.randn(2, 3, 4, 32, 32)
    assert not torch.allclose(twin(video), model(video))


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
@pytest.mark.parametrize("name", sorted(STEPS))
def test_bf16_autocast_with_selective_checkpointing_gives_fp32_like_gradients(name, device):
    """bf16 inputs under autocast (LayerNorm runs in fp32 there, the matrix products in bf16), recomputed in
    backward: gradients are finite and within bf16 precision of the fp32 ones."""
    reference = _model(name).to(device)
    model = copy.deepcopy(reference)
    apply_activation_checkpointing(model, "selective")
    video = torch.randn(2, 3, 4, 32, 32, device=device)
    out, grads = STEPS[name](model, video.bfloat16(), dtype=torch.bfloat16)
    _, expected = STEPS[name](reference, video)
    assert out.dtype == torch.bfloat16
    for key, grad in grads.items():
        assert grad.dtype == torch.float32 and torch.isfinite(grad).all(), key
    flat = torch.cat([grads[key].flatten() for key in expected])
    flat_expected = torch.cat([grad.flatten() for grad in expected.values()])
    assert (flat - flat_expected).norm() / flat_expected.norm() < 0.05


def test_unknown_modes_and_old_boolean_settings_are_refused():
    with pytest.raises(ConfigError, match="'none', 'selective', 'full'"):
        apply_activation_checkpointing(_model("vit_small_patch16_224"), "partial")
    with pytest.raises(ConfigError, match="activation_checkpointing must be one of"):
        load_recipe("tiny", ["activation_checkpointing=true"])
    assert load_recipe("vit_g_hybrid_pt").activation_checkpointing == "full"


def test_compiled_checkpointed_blocks_give_the_eager_outputs_and_gradients():
    """The engine's order: selective AC, then torch.compile per block; neither changes what is computed."""
    eager = _model("pretrain_videomae_small_patch16_224")
    compiled = copy.deepcopy(eager)
    apply_activation_checkpointing(compiled, "selective")
    apply_compile(compiled)
    video = torch.randn(2, 3, 4, 32, 32)
    out_e, grads_e = _pretrain_step(eager, video)
    out_c, grads_c = _pretrain_step(compiled, video)
    torch.testing.assert_close(out_c, out_e, atol=1e-5, rtol=1e-4)
    assert grads_c.keys() == grads_e.keys()
    for name in grads_e:
        torch.testing.assert_close(grads_c[name], grads_e[name], atol=1e-5, rtol=1e-4, msg=name)
