"""minires's tests: one file per module, named after it; shared helpers in ``tests.support``."""
