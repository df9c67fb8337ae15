# Hand K3s this node's image list (IMAGES, one reference per line) to pull ahead of need: K3s watches its images directory and
# pulls every reference of a .txt file there while it runs (docs.k3s.io "Import Images"). Run only
# after K3s is up, so the pulls never hold its start. Idempotent: an unchanged list is left alone.
# Parameters: NODE_NAME IMAGES_DIR LIST_FILE IMAGES LIST_SHA256 (of IMAGES)
: "${IMAGES_DIR:?}" "${LIST_FILE:?}" "${IMAGES:?}" "${LIST_SHA256:?}"
target="$IMAGES_DIR/$LIST_FILE"
if [ -f "$target" ] && [ "$(as_root sha256sum "$target" | cut -d' ' -f1)" = "$LIST_SHA256" ]; then
  say "image list unchanged ($target)"
  exit 0
fi
as_root mkdir -p "$IMAGES_DIR"
# Written next to the directory, then moved in: K3s never reads a half-written list.
tmp="$IMAGES_DIR.$LIST_FILE.new"
printf '%s' "$IMAGES" | as_root tee "$tmp" >/dev/null
[ "$(as_root sha256sum "$tmp" | cut -d' ' -f1)" = "$LIST_SHA256" ] || fail "the image list written to $tmp is not the one planned"
as_root chmod 0644 "$tmp"
as_root mv -f "$tmp" "$target"
say "K3s pulls $(as_root wc -l <"$target") images in the background ($target)"
