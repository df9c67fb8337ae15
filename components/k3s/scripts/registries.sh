# Write K3s's registries.yaml (mirrors and auth; it may hold credentials, so it arrives on stdin and is
# written 0600). K3s reads it at start, but this command never restarts K3s: the file's digest is part of
# the node's config.yaml (node_images_plan.registries_marker), so the install command, which runs after
# this one, servers one at a time, restarts K3s without blocking and waits with a deadline.
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
say "registries.yaml written; K3s on $NODE_NAME restarts in its install step (one node at a time)"
