"""Communicator backends, one module each; imported by `mlscale.launch.comm`."""
