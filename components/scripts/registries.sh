# Write K3s's registries.yaml (mirrors and auth; it may hold credentials, so it arrives on stdin and is
# written 0600). K3s reads it at start: when K3s already runs and the file changed, restart it.
# Parameters: NODE_NAME REGISTRIES_FILE
: "${REGISTRIES_FILE:?}"
as_root mkdir -p "$(dirname "$REGISTRIES_FILE")"
as_root install -m 0600 /dev/null "$REGISTRIES_FILE.new"
as_root tee "$REGISTRIES_FILE.new" >/dev/null
if [ -f "$REGISTRIES_FILE" ] && as_root cmp -s "$REGISTRIES_FILE.new" "$REGISTRIES_FILE"; then
  as_root rm -f "$REGISTRIES_FILE.new"
  say "registries.yaml unchanged"
  exit 0
fi
as_root mv -f "$REGISTRIES_FILE.new" "$REGISTRIES_FILE"
for unit in k3s k3s-agent; do
  if as_root systemctl is-active --quiet "$unit" 2>/dev/null; then
    say "registries.yaml changed: restarting $unit"
    as_root systemctl restart "$unit"
  fi
done
