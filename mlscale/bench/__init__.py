"""mlscale.bench."""
