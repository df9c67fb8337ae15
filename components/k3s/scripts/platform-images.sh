# Import the staged platform image archives into K3s's containerd (namespace k8s.io, where the kubelet
# looks), once K3s runs. Re-importing an archive already present only re-links its content.
# Parameters: NODE_NAME BUNDLE_DIR WAIT_SECONDS
: "${BUNDLE_DIR:?}" "${WAIT_SECONDS:?}"
k3s=/usr/local/bin/k3s
containerd_up() { as_root "$k3s" ctr -n k8s.io version; }
wait_until "$WAIT_SECONDS" "K3s's containerd" "systemctl status k3s k3s-agent; journalctl -u k3s -u k3s-agent" containerd_up
count=0
for archive in "$BUNDLE_DIR"/*.tar; do
  [ -f "$archive" ] || continue
  as_root "$k3s" ctr -n k8s.io images import "$archive" >/dev/null \
    || fail "cannot import $archive (is it an image archive for this node's architecture? see docs/images.md)"
  count=$((count + 1))
done
[ "$count" -gt 0 ] || fail "no image archive (*.tar) in $BUNDLE_DIR"
say "imported $count image archives from $BUNDLE_DIR"
