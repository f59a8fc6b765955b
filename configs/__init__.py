"""Configuration files shipped with the package (model presets, recipes)."""
