"""Sources, camera workers, tasks: everything that moves frames and findings around."""
