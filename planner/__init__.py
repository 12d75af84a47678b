"""The planner: requests, problems, plans, and the studies, outputs and CLI built on them."""
