"""The PyTorch engine: devices, speed-up switches, the timed step loop and weights files."""
