# Undo prepare.sh: remove the files this project wrote. Running values stay until the next reboot.
# Parameters: NODE_NAME SYSCTL_FILE MODULES_FILE
: "${SYSCTL_FILE:?}" "${MODULES_FILE:?}"
as_root rm -f "$SYSCTL_FILE" "$MODULES_FILE"
say "removed $SYSCTL_FILE and $MODULES_FILE"
