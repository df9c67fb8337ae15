# Undo prepare.sh: remove the files this project wrote, and the air-gap staging folder (its copies have
# no delete of their own). Running sysctl values stay until the next reboot.
# Parameters: NODE_NAME SYSCTL_FILE MODULES_FILE STAGE_DIR
: "${SYSCTL_FILE:?}" "${MODULES_FILE:?}" "${STAGE_DIR:?}"
as_root rm -f "$SYSCTL_FILE" "$MODULES_FILE"
as_root rm -rf "$STAGE_DIR"
say "removed $SYSCTL_FILE, $MODULES_FILE and $STAGE_DIR"
