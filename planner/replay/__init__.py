"""Historical replay: policies decide with only the past and pay with what really happened.

* :mod:`planner.replay.jobs` - replay jobs from a CSV or a generator spec;
* :mod:`planner.replay.engine` - the epoch-by-epoch engine and the policy interface;
* :mod:`planner.replay.policies` - run-now, threshold, greedy, milp, oracle;
* :mod:`planner.replay.metrics` - per-job and per-policy metrics;
* :mod:`planner.replay.sweep` - the vectorised slack sweep;
* :mod:`planner.replay.runner` - load data, build a scenario, run several policies.
"""
