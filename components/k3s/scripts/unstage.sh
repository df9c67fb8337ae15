# Remove the air-gap staging folder (after the install that reads it is gone; the copies have no delete).
# Parameters: NODE_NAME STAGE_DIR
: "${STAGE_DIR:?}"
as_root rm -rf "$STAGE_DIR"
as_root rmdir "$(dirname "$STAGE_DIR")" 2>/dev/null || true
say "removed $STAGE_DIR"
