"""Trigger adapters: each knows one event shape and turns it into TaskRefs, nothing else."""
