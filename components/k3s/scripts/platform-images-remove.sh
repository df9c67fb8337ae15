# Remove the staged bundle (imported images stay in containerd).
# Parameters: NODE_NAME BUNDLE_DIR
: "${BUNDLE_DIR:?}"
as_root rm -rf "$BUNDLE_DIR" || true
