# Remove the image list (the images pulled stay in containerd until K3s's image GC or an uninstall).
# Parameters: NODE_NAME IMAGES_DIR LIST_FILE
: "${IMAGES_DIR:?}" "${LIST_FILE:?}"
as_root rm -f "$IMAGES_DIR/$LIST_FILE" "$IMAGES_DIR.$LIST_FILE.new" || true
