"""Tools run from a checkout (not part of the moma distribution): ``netns_cluster.py``
makes several Docker hosts on one machine for the multi-host tests and benchmarks."""
