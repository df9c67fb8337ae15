# Remove registries.yaml (K3s then pulls from the upstream registries after its next restart).
# Parameters: NODE_NAME REGISTRIES_FILE
: "${REGISTRIES_FILE:?}"
as_root rm -f "$REGISTRIES_FILE" "$REGISTRIES_FILE.new" || true
