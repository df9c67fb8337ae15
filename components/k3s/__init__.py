"""K3s layer: the cluster itself. Owns each node over SSH (connection, preflight, prepare, install, join,
leave), the kubeconfig and the Kubernetes provider, the images each node gets ahead of need (registries,
pre-pull, air-gap bundle) and the shell scripts every layer runs on a node (scripts.py, scripts/).
Waits for nothing: every other layer waits for its nodes Ready (K3sCluster.k8s_options)."""
