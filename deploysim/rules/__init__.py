"""The rules both worlds follow, each written once as a small pure function.

- :mod:`deploysim.rules.deployment`: the Deployment controller's fenceposts, ReplicaSet
  scaling, availability after ``minReadySeconds`` and the progress deadline (Kubernetes);
- :mod:`deploysim.rules.canary`: pods per canary weight, ``setCanaryScale`` counts and the
  weight a canary without a traffic router gets from its ready pods (Argo Rollouts);
- :mod:`deploysim.rules.service`: the service model of load, failures and latency;
- :mod:`deploysim.rules.checks`: how a check's bounds judge a measured value.

They import nothing else of deploysim, so the simulator, the cluster world, the traffic
exporter, the controller and the strategies all call them without an import circle.
"""
