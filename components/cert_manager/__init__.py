"""cert-manager layer: the jetstack chart and the stack's ClusterIssuers.
Waits for the K3s layer's nodes Ready (and, with the operator's GPU toolkit, the GPU layer settled)."""
