# Tolerant uninstall with K3s's own script: succeeds when K3s is already gone.
# Parameters: NODE_NAME ROLE (server|agent) BIN_DIR (where install.sh put K3s's scripts)
: "${ROLE:?}" "${BIN_DIR:?}"
if [ "$ROLE" = server ]; then script="$BIN_DIR/k3s-uninstall.sh"; else script="$BIN_DIR/k3s-agent-uninstall.sh"; fi
if [ -x "$script" ]; then
  as_root "$script" >&2
  say "K3s $ROLE uninstalled"
else
  say "K3s $ROLE is not installed (no $script); nothing to uninstall"
fi
