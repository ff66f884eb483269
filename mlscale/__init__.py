"""mlscale: an MPI-aware benchmark harness for scientific deep learning on HPC systems."""

__version__ = "0.1.0"
