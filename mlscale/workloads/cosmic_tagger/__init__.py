"""The cosmic_tagger workload (see workload.py)."""
