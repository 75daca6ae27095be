"""The web layer: what wires features to HTTP (dependencies every route may ask for)."""
