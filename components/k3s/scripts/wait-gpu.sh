# GPU readiness, run on the first server after the GPU charts: every GPU node advertises
# nvidia.com/gpu and is Ready. On the operator path the container toolkit restarts K3s on each GPU
# node before the device plugin can start, so when this returns that restart is over.
# Parameters: NODE_NAME GPU_NODES (space separated node names) WAIT_SECONDS
: "${GPU_NODES:?}" "${WAIT_SECONDS:?}"
kubectl() { as_root /usr/local/bin/k3s kubectl "$@"; }
gpus_advertised() {
  count=$(kubectl get node "$1" -o 'jsonpath={.status.allocatable.nvidia\.com/gpu}') || return 1
  [ -n "$count" ] && [ "$count" -gt 0 ]
}
for node in $GPU_NODES; do
  wait_until "$WAIT_SECONDS" "node $node to advertise nvidia.com/gpu" \
    "kubectl -n gpu-operator get pods -o wide (toolkit, validator, device plugin on $node); nvidia-smi on $node" \
    gpus_advertised "$node"
  wait_until "$WAIT_SECONDS" "node $node to be Ready after the toolkit's K3s restart" \
    "kubectl describe node $node" \
    kubectl wait --for=condition=Ready "node/$node" --timeout=10s
done
say "GPUs advertised on: $GPU_NODES"
