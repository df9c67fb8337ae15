# The cluster identity check, on the first server, whenever the cluster's CA digest differs from the last
# run's (K3s started a new cluster) and before any other Kubernetes object is touched: the marker ConfigMap,
# which this stack creates right before this check, must be in the cluster. It is not when Pulumi kept
# every object of the old cluster in its state instead of creating it again (a Pulumi CLI without
# pulumi/pulumi#23818): fail, naming the new cluster and the recovery, instead of a green `up` on an empty
# cluster. Read-only. See docs/k3s.md "A new cluster behind the same stack".
# Parameters: NODE_NAME API CA_DIGEST MARKER_NAMESPACE MARKER_NAME WAIT_SECONDS
: "${API:?}" "${CA_DIGEST:?}" "${MARKER_NAMESPACE:?}" "${MARKER_NAME:?}" "${WAIT_SECONDS:?}"
wait_until "$WAIT_SECONDS" "the Kubernetes API on $NODE_NAME" "journalctl -u k3s -n 100 on $NODE_NAME" \
  as_root /usr/local/bin/k3s kubectl get --raw=/readyz --request-timeout=10s
if ! found=$(as_root /usr/local/bin/k3s kubectl get configmap -n "$MARKER_NAMESPACE" "$MARKER_NAME" \
    --ignore-not-found -o name --request-timeout=20s); then
  fail "could not read configmap $MARKER_NAMESPACE/$MARKER_NAME from the API on $NODE_NAME (see the kubectl error above)"
fi
if [ -n "$found" ]; then
  say "cluster identity: CA sha256 $CA_DIGEST; this stack's objects are in the cluster ($MARKER_NAMESPACE/$MARKER_NAME)"
  exit 0
fi
fail "the cluster at $API is a new, empty cluster (K3s on $NODE_NAME has a new certificate authority, sha256 $CA_DIGEST), \
but Pulumi's state still lists every Kubernetes object of the old one as existing, so this \`pulumi up\` would create \
nothing (configmap $MARKER_NAMESPACE/$MARKER_NAME is missing). To deploy the platform again on the new cluster: \
run \`pulumi refresh\` (it drops from the state what the cluster does not have), then \`pulumi up\`. \
A Pulumi CLI that replaces deletedWith dependents (pulumi/pulumi#23818) does this in one \`pulumi up\`."
