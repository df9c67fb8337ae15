# Shared helpers, prepended to every script this project runs on a node (see components/scripts.py).
# POSIX sh: the login shell of the SSH user may be dash, bash or zsh.
set -eu
# as_root CMD...: run CMD as root; sudo -n fails at once instead of waiting for a password.
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }
say() { printf 'kubeflow-k3s[%s]: %s\n' "${NODE_NAME:-node}" "$*" >&2; }
fail() { say "ERROR: $*"; exit 1; }
# wait_until SECONDS WHAT CHECK_HINT CMD...: run CMD every 5 s until it succeeds or SECONDS pass.
wait_until() {
  _limit=$1; _what=$2; _hint=$3; shift 3
  _waited=0
  until "$@" >/dev/null 2>&1; do
    if [ "$_waited" -ge "$_limit" ]; then
      fail "timed out after ${_limit}s waiting for ${_what}. Check: ${_hint}"
    fi
    sleep 5
    _waited=$((_waited + 5))
  done
}
