# Tolerant uninstall with K3s's own script: succeeds when K3s is already gone.
# Parameters: NODE_NAME ROLE (server|agent)
: "${ROLE:?}"
if [ "$ROLE" = server ]; then script=/usr/local/bin/k3s-uninstall.sh; else script=/usr/local/bin/k3s-agent-uninstall.sh; fi
if [ -x "$script" ]; then
  as_root "$script" >&2
  say "K3s $ROLE uninstalled"
else
  say "K3s $ROLE is not installed (no $script); nothing to uninstall"
fi
