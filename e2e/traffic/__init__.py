"""Real HTTP traffic for the e2e tests: a load generator that runs for a whole rollout and
the pure functions that turn what it saw into assertions and figures (see load.py)."""
