# A node leaves the cluster (removed from the stack, or moved to another host): drain it and delete its Node
# object from a server that stays, before the node's K3s is uninstalled. K3s's docs: delete the node with
# kubectl before re-using its name (node passwords, docs.k3s.io/architecture); deleting a server's Node
# also removes its etcd member (K3s's etcd member controller, k3s-io/k3s#3973), so etcd keeps quorum.
# Parameters: NODE_NAME (the server this runs on) MEMBER ROLE MEMBERS_DIR WAIT_SECONDS
: "${MEMBER:?}" "${ROLE:?}" "${MEMBERS_DIR:?}" "${WAIT_SECONDS:?}"
kubectl() { as_root /usr/local/bin/k3s kubectl --request-timeout=30s "$@"; }
if ! as_root test -x /usr/local/bin/k3s; then
  say "K3s is not installed here; nothing to remove $MEMBER from"
  exit 0
fi
# Only a node the API says is absent has left (--ignore-not-found: empty output). An API that does not answer
# (K3s down, etcd without quorum, a timeout) is retried until the deadline, then fails: never skip the drain.
member_uid() { uid=$(kubectl get node "$MEMBER" --ignore-not-found -o 'jsonpath={.metadata.uid}'); }
wait_until "$WAIT_SECONDS" "the K3s API on $NODE_NAME to answer whether node $MEMBER is in the cluster" \
  "journalctl -u k3s -n 100 on $NODE_NAME (is K3s running? etcd quorum); sudo k3s kubectl get node $MEMBER on $NODE_NAME" \
  member_uid
if [ -z "$uid" ]; then
  say "node $MEMBER is not in the cluster; nothing to drain"
  exit 0
fi
known=$(as_root cat "$MEMBERS_DIR/$MEMBER.uid" 2>/dev/null || true)
if [ -n "$known" ] && [ "$uid" != "$known" ]; then
  # A new host registered under this name already (its old host was taken out of Pulumi's state).
  say "node $MEMBER is a newer registration (uid $uid, not $known): left in place"
  exit 0
fi
say "draining $ROLE $MEMBER"
kubectl drain "$MEMBER" --ignore-daemonsets --delete-emptydir-data --timeout="${WAIT_SECONDS}s" >&2 \
  || fail "could not drain $MEMBER within ${WAIT_SECONDS}s. Check: kubectl get pdb -A (a PodDisruptionBudget may block eviction); kubectl get pods -A -o wide --field-selector spec.nodeName=$MEMBER"
kubectl delete node "$MEMBER" --ignore-not-found --timeout="${WAIT_SECONDS}s" >&2 \
  || fail "could not delete node $MEMBER. Check: kubectl get node $MEMBER -o yaml (finalizers)"
as_root rm -f "$MEMBERS_DIR/$MEMBER.uid"
say "node $MEMBER drained and deleted from the cluster"
