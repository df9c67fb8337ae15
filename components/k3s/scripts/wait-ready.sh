# Cluster readiness, run on the first server once every node is installed: all nodes Ready.
# Parameters: NODE_NAME NODES (space separated node names) WAIT_SECONDS
: "${NODES:?}" "${WAIT_SECONDS:?}"
for node in $NODES; do
  wait_until "$WAIT_SECONDS" "node $node to be Ready" \
    "kubectl describe node $node; journalctl -u k3s-agent on $node (agents) or -u k3s (servers)" \
    as_root /usr/local/bin/k3s kubectl wait --for=condition=Ready "node/$node" --timeout=10s
done
say "all nodes Ready: $NODES"
