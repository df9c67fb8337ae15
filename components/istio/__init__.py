"""Istio layer: base, CNI, istiod and the gateways as Kubeflow's common/istio, plus the gateway certificate.
Its charts wait for the K3s layer's nodes Ready; the gateway Certificate waits for cert-manager's issuers."""
