# Cluster readiness, run on the first server once every node is installed: all nodes Ready.
# Parameters: NODE_NAME NODES (space separated node names) WAIT_SECONDS
: "${NODES:?}" "${WAIT_SECONDS:?}"
# One deadline for the whole wait (not WAIT_SECONDS per node): each node gets the time left, at least 1 s.
deadline=$(($(date +%s) + WAIT_SECONDS))
for node in $NODES; do
  left=$((deadline - $(date +%s)))
  if [ "$left" -lt 1 ]; then left=1; fi
  wait_until "$left" "node $node to be Ready (all nodes share one ${WAIT_SECONDS}s deadline)" \
    "kubectl describe node $node; journalctl -u k3s-agent on $node (agents) or -u k3s (servers)" \
    as_root /usr/local/bin/k3s kubectl wait --for=condition=Ready "node/$node" --timeout=10s
done
say "all nodes Ready: $NODES"
