"""cloud-mask: SLSTR cloud masking (seed 001), in PyTorch and TensorFlow."""
