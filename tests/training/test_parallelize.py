import copy

import torch

from videomae import create_model
from videomae.masking import make_mask
from videomae.training.parallelize import apply_compile

TINY = dict(img_size=32, patch_size=8, num_frames=4, tubelet_size=2, embed_dim=32, depth=2, num_heads=4,
            decoder_embed_dim=16, decoder_depth=2, decoder_num_heads=2)


def test_compiled_blocks_give_the_eager_outputs_and_gradients():
    """compile=true (torch.compile per block) must not change what the fused linears and the last decoder
    block's row skipping compute."""
    torch.manual_seed(0)
    eager = create_model("pretrain_videomae_small_patch16_224", **TINY)
    compiled = copy.deepcopy(eager)
    apply_compile(compiled)
    video = torch.randn(2, 3, 4, 32, 32)
    generator = torch.Generator().manual_seed(0)
    encoder_mask = make_mask("tube", 2, (2, 4, 4), 0.75, generator=generator)
    decoder_mask = make_mask("running_cell", 2, (2, 4, 4), 0.5, generator=generator)
    results = []
    for model in (eager, compiled):
        out = model(video, encoder_mask, decoder_mask)
        out.square().mean().backward()
        results.append((out, {name: p.grad for name, p in model.named_parameters()}))
    (out_e, grads_e), (out_c, grads_c) = results
    torch.testing.assert_close(out_c, out_e, atol=1e-5, rtol=1e-4)
    assert grads_c.keys() == grads_e.keys()
    for name in grads_e:
        torch.testing.assert_close(grads_c[name], grads_e[name], atol=1e-5, rtol=1e-4, msg=name)
