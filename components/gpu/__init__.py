"""GPU layer: NVIDIA GPU support on the GPU nodes (operator or device plugin, RuntimeClass, K3s settings).
Waits for the K3s layer's nodes Ready; with the operator's toolkit, every other Kubernetes object waits for it."""
