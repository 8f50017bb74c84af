"""The HTTP service: health and metrics of the running deployment, cases, and the console."""
