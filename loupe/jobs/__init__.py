"""Training jobs: the JobSpec contract and the backends that run it."""
