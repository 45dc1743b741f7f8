"""The real world: a Kubernetes cluster reached through the official client."""
