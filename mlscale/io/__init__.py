"""mlscale.io."""
