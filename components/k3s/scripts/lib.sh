# Shared helpers, prepended to every script this project runs on a node (see components/scripts.py).
# POSIX sh: the login shell of the SSH user may be dash, bash or zsh.
set -eu
# as_root CMD...: run CMD as root; sudo -n fails at once instead of waiting for a password.
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }
say() { printf 'kubeflow-k3s[%s]: %s\n' "${NODE_NAME:-node}" "$*" >&2; }
fail() { say "ERROR: $*"; exit 1; }
# wait_until SECONDS WHAT CHECK_HINT CMD...: run CMD until it succeeds, at most SECONDS of wall-clock time
# (a real deadline: the time CMD itself takes counts), polling every 5 s; CMD should bound itself
# (kubectl --request-timeout/--timeout) so one attempt cannot outlive the deadline by much.
wait_until() {
  _limit=$1; _what=$2; _hint=$3; shift 3
  _deadline=$(($(date +%s) + _limit))
  until "$@" >/dev/null 2>&1; do
    _left=$((_deadline - $(date +%s)))
    if [ "$_left" -le 0 ]; then
      fail "timed out after ${_limit}s waiting for ${_what}. Check: ${_hint}"
    fi
    if [ "$_left" -gt 5 ]; then _left=5; fi
    sleep "$_left"
  done
}
