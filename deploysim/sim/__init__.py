"""The rehearsal world: a SimPy model of pods, nodes, ReplicaSets, routing and traffic."""

from deploysim.sim.engine import rehearse

__all__ = ["rehearse"]
