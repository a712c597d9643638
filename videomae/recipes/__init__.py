"""Named training recipes (TOML); load with `videomae.training.load_recipe(name, overrides)`."""
