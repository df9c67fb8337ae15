# K3s's `nvidia` RuntimeClass outlives the GPU operator (components/gpu_plan.py runtime_class_params).
# ACTION=ensure (create): the RuntimeClass exists; K3s's definition is restored if an earlier failed
#   run lost it (K3s itself re-applies it only when a server restarts).
# ACTION=keep (delete, before the operator's release is deleted): stop the operator, which would put
#   its owner reference back, then remove the owner references, so deleting the ClusterPolicy does
#   not garbage-collect the RuntimeClass.
# Parameters: NODE_NAME ACTION RUNTIME_CLASS OPERATOR_NAMESPACE OPERATOR_DEPLOYMENT OPERATOR_SELECTOR WAIT_SECONDS
: "${ACTION:?}" "${RUNTIME_CLASS:?}" "${OPERATOR_NAMESPACE:?}" "${OPERATOR_DEPLOYMENT:?}" "${OPERATOR_SELECTOR:?}" "${WAIT_SECONDS:?}"
kubectl() { as_root /usr/local/bin/k3s kubectl "$@"; }
restore() {
  # K3s's packaged manifests/runtimes.yaml: a RuntimeClass whose handler is its name.
  printf 'apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata:\n  name: %s\nhandler: %s\n' \
    "$RUNTIME_CLASS" "$RUNTIME_CLASS" | kubectl apply -f - >/dev/null || return 1
  say "restored RuntimeClass $RUNTIME_CLASS"
}
present_or_restored() { kubectl get runtimeclass "$RUNTIME_CLASS" >/dev/null 2>&1 || restore; }
operator_stopped() {
  [ -z "$(kubectl -n "$OPERATOR_NAMESPACE" get pods -l "$OPERATOR_SELECTOR" -o name 2>/dev/null)" ]
}
case "$ACTION" in
  ensure)
    # Retried: right after the operator's release its toolkit may be restarting K3s (the API blips).
    wait_until "$WAIT_SECONDS" "RuntimeClass $RUNTIME_CLASS (restored from K3s's definition when missing)" \
      "kubectl get runtimeclass $RUNTIME_CLASS; systemctl status k3s" present_or_restored
    ;;
  keep)
    wait_until "$WAIT_SECONDS" "the API server" "systemctl status k3s" kubectl get --raw /readyz
    if kubectl -n "$OPERATOR_NAMESPACE" get deployment "$OPERATOR_DEPLOYMENT" >/dev/null 2>&1; then
      kubectl -n "$OPERATOR_NAMESPACE" scale deployment "$OPERATOR_DEPLOYMENT" --replicas=0 >/dev/null
      wait_until "$WAIT_SECONDS" "the GPU operator to stop" \
        "kubectl -n $OPERATOR_NAMESPACE get pods -l $OPERATOR_SELECTOR" operator_stopped
    fi
    if kubectl get runtimeclass "$RUNTIME_CLASS" >/dev/null 2>&1; then
      kubectl patch runtimeclass "$RUNTIME_CLASS" --type=json \
        -p '[{"op": "remove", "path": "/metadata/ownerReferences"}]' >/dev/null 2>&1 || true
      say "RuntimeClass $RUNTIME_CLASS released from the GPU operator"
    else
      restore
    fi
    ;;
  *) fail "unknown ACTION $ACTION" ;;
esac
