"""What users run on trained models: `predict` (class names and probabilities), `extract` (clip features for
temporal action localization) and `visualize` (masked reconstructions), each a thin layer under `videomae/cli/`."""
