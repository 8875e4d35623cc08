"""A simulated cluster for the real reconcile pass: an in-memory API server (memory_kube),
a world that plays the Deployment and EndpointSlice controllers and a clock (world), and
the plan of a Rollout drawn from it (plan: `kubectl nonstop plan`).

It sits above reconcile and beside handlers (import-linter's layers contract): it runs
passes exactly as the operator does, against no cluster at all."""
