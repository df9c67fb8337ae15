# Create step of a node's membership command, run on the server that would remove it: note the UID of the
# node's Node object. Its delete (leave.sh) drains the node and deletes that Node before the node's K3s is
# uninstalled.
# Parameters: NODE_NAME (the server this runs on) MEMBER ROLE MEMBERS_DIR WAIT_SECONDS
: "${MEMBER:?}" "${ROLE:?}" "${MEMBERS_DIR:?}" "${WAIT_SECONDS:?}"
kubectl() { as_root /usr/local/bin/k3s kubectl --request-timeout=10s "$@"; }
wait_until "$WAIT_SECONDS" "node $MEMBER to register" \
  "journalctl -u k3s-agent (agents) or -u k3s (servers) on $MEMBER" kubectl get node "$MEMBER"
uid=$(kubectl get node "$MEMBER" -o 'jsonpath={.metadata.uid}')
as_root mkdir -p "$MEMBERS_DIR"
printf '%s\n' "$uid" | as_root tee "$MEMBERS_DIR/$MEMBER.uid" >/dev/null
say "$ROLE $MEMBER is a member (Node uid $uid); if it leaves the stack it is drained and deleted from the cluster on $NODE_NAME"
