"""The tiny ViT the model and parallelism tests build: every kind of block, seconds on a CPU."""

TINY = dict(
    img_size=32,
    patch_size=8,
    num_frames=4,
    tubelet_size=2,
    embed_dim=32,
    depth=2,
    num_heads=4,
    decoder_embed_dim=16,
    decoder_depth=1,
    decoder_num_heads=2,
)
