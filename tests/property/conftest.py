"""Hypothesis settings for every property test: no per-example deadline. Hypothesis fails
an example that takes over 200 ms by default, and on a loaded 2-core CI machine a slow
example says nothing about the property (timing goals live in bench/, never in tests)."""

from hypothesis import settings

settings.register_profile("nonstop", deadline=None)
settings.load_profile("nonstop")
