"""Domain handlers: gather inputs, call the core, write results. Registered in ``registration``."""
