"""Methane-plume saliency: preprocessing, checkpoints, and the cnn / fcn / exact inference methods."""
