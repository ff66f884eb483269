"""mlscale.results."""
