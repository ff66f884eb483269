"""Who am I and how do ranks talk (env, comm); how do jobs get nodes (jobs)."""
