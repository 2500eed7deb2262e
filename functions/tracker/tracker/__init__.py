"""The run tracker of the choreography engine: counts each item's end, once, per run."""
