"""GBDT+LR click model (He et al., 2014): boosted-tree leaves one-hot encoded as LR features."""
