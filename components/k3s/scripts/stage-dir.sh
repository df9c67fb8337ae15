# Air-gap staging folder, created before Pulumi copies the K3s binary, images, installer and registries.yaml
# into it over SFTP as the login user (an SFTP put creates no parent directories).
# Parameters: NODE_NAME STAGE_DIR
: "${STAGE_DIR:?}"
as_root install -d -m 0755 "$(dirname "$STAGE_DIR")"
as_root install -d -m 0700 -o "$(id -u)" -g "$(id -g)" "$STAGE_DIR"
say "staging folder $STAGE_DIR ready"
