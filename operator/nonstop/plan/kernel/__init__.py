"""The kernel every strategy shares: the revisions' pods (fleet), progress and the deadline
(progress), a rolling replacement that completes or rolls back (settle), and what the
step-based strategies have in common (stepped). Strategies import from here, never from
each other."""
