# Undo prepare.sh: remove the files this project wrote, and say what is kept on purpose.
# Running sysctl values stay until the next reboot.
# Parameters: NODE_NAME SYSCTL_FILE MODULES_FILE PACKAGES SERVICES
: "${SYSCTL_FILE:?}" "${MODULES_FILE:?}" "${PACKAGES?}" "${SERVICES?}"
as_root rm -f "$SYSCTL_FILE" "$MODULES_FILE"
say "removed $SYSCTL_FILE and $MODULES_FILE"
# Kept: volume data is user data, and packages may serve other software. Say so, with how to remove them.
if as_root test -d /var/lib/longhorn; then
  say "kept /var/lib/longhorn (Longhorn volume data). Remove it when no longer needed: sudo rm -rf /var/lib/longhorn"
fi
if as_root test -d /usr/local/nvidia/toolkit; then
  say "kept /usr/local/nvidia/toolkit (NVIDIA container toolkit installed by the GPU operator). Remove it: sudo rm -rf /usr/local/nvidia"
fi
if [ -n "$PACKAGES" ]; then
  say "kept host packages $PACKAGES (and enabled services: ${SERVICES:-none}). Remove them with your package manager if nothing else needs them"
fi
