"""Evidence: sealed packages, signatures, the transparency log; verifiable from a bundle alone."""
