# The folder the air-gapped platform bundle is copied into (SFTP writes as the login user).
# Parameters: NODE_NAME BUNDLE_DIR
: "${BUNDLE_DIR:?}"
as_root mkdir -p "$BUNDLE_DIR"
as_root chown "$(id -u):$(id -g)" "$BUNDLE_DIR"
as_root chmod 0750 "$BUNDLE_DIR"
