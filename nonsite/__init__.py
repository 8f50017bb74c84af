"""nonsite's composition root: settings, wiring, and the `nonsite` command line."""

__version__ = "0.1.0"
