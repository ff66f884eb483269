"""mlscale.models."""
