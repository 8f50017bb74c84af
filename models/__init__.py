"""Model artifacts: export to ONNX, cards, registry, training (the `train` extra)."""
