# Install or re-apply K3s on one node (create and update run the same text). The node's config.yaml (it
# holds the cluster token) arrives on stdin and is written with mode 0600; it is never in the command text.
# Parameters: NODE_NAME ROLE (server|agent) K3S_VERSION INSTALL_URL (empty when air-gapped)
#             STAGE_DIR (air-gapped files) IMAGES_FILE STAGED_SHA256 ("file=sha256 ..." of the staged files)
#             JOIN_CANDIDATES (first HA server only: the other servers' URLs) WAIT_SECONDS
#             BIN_DIR (where K3s's installer puts k3s and its uninstall scripts)
: "${ROLE:?}" "${K3S_VERSION:?}" "${INSTALL_URL?}" "${STAGE_DIR:?}" "${IMAGES_FILE?}" "${STAGED_SHA256?}"
: "${JOIN_CANDIDATES?}" "${WAIT_SECONDS:?}" "${BIN_DIR:?}"
config=/etc/rancher/k3s/config.yaml
# What K3s runs, as a digest kept next to its data: config.yaml, version and staged files. It alone decides
# a restart: install.sh hashes only the binary, unit and env file (not config.yaml: "No change detected so
# skipping service start"), and a new text of these helper scripts must not restart every node.
digest_file=/var/lib/rancher/k3s/kubeflow-k3s.digest
service=k3s
[ "$ROLE" = agent ] && service=k3s-agent
kubectl() { as_root /usr/local/bin/k3s kubectl --request-timeout=10s "$@"; }

# A role change on the same host (agent -> server or back): the old role's uninstall would run only after
# this install (an agent's lives on its teardown command, deleted at the end of `up`), and K3s's killall
# stops every k3s* unit, the new one too. So the old role goes first. K3s's uninstall removes /etc/rancher/k3s:
# registries.yaml (registries.sh wrote it before this command and does not run again) is kept aside and
# put back, also by a re-run after a failure in between.
if [ "$ROLE" = server ]; then other=agent; other_uninstall="$BIN_DIR/k3s-agent-uninstall.sh"
else other=server; other_uninstall="$BIN_DIR/k3s-uninstall.sh"; fi
kept_registries=/etc/rancher/registries.yaml.kubeflow-k3s
if as_root test -x "$other_uninstall"; then
  say "this host runs the K3s $other: uninstalling the K3s $other first ($other_uninstall), then installing the $ROLE"
  if as_root test -f /etc/rancher/k3s/registries.yaml; then
    as_root mv -f /etc/rancher/k3s/registries.yaml "$kept_registries"
  fi
  as_root "$other_uninstall" </dev/null >&2 \
    || fail "K3s's $other_uninstall failed on $NODE_NAME. Check its output above (registries.yaml, if any, waits in $kept_registries for the next run)"
fi
if as_root test -f "$kept_registries"; then
  if as_root test -f /etc/rancher/k3s/registries.yaml; then
    as_root rm -f "$kept_registries"  # registries.sh wrote a newer one since
  else
    as_root mkdir -p /etc/rancher/k3s
    as_root mv -f "$kept_registries" /etc/rancher/k3s/registries.yaml
  fi
fi

as_root mkdir -p /etc/rancher/k3s
as_root install -m 0600 /dev/null "$config.new"
as_root tee "$config.new" >/dev/null

if [ -z "$INSTALL_URL" ]; then
  # Air-gapped: the files were copied to STAGE_DIR by Pulumi; each must be the one this run copied.
  for entry in $STAGED_SHA256; do
    file=${entry%%=*}; want=${entry#*=}
    have=$(as_root sha256sum "$STAGE_DIR/$file" 2>/dev/null | cut -d' ' -f1) || have=""
    [ "$have" = "$want" ] || fail "staged $STAGE_DIR/$file is missing or not the file this run copied (sha256 ${have:-none}, expected $want)"
  done
fi

# The first server of an HA cluster bootstraps it (cluster-init) only when no other server is up: a
# replaced first server joins the running cluster instead of starting a second one. K3s's HA docs:
# "--cluster-init" initialises a new cluster; other servers join with "--server" (docs.k3s.io/datastore/ha-embedded).
# The join is recorded in K3s's data dir (K3s's uninstall removes it) and the same edit is made on every
# later run, so config.yaml and its digest stay what K3s runs with (no restart on each update).
join_marker=/var/lib/rancher/k3s/kubeflow-k3s.joined
if [ -n "$JOIN_CANDIDATES" ] && ! as_root test -s "$join_marker" && ! as_root test -d /var/lib/rancher/k3s/server/db/etcd; then
  if ! command -v curl >/dev/null 2>&1 && ! command -v wget >/dev/null 2>&1; then
    fail "neither curl nor wget is installed on $NODE_NAME: it cannot ask the other servers ($JOIN_CANDIDATES) whether a cluster already runs, and bootstrapping without asking could start a second cluster. Install curl or wget on $NODE_NAME and run again"
  fi
  # /ping is the unauthenticated supervisor endpoint every K3s server answers on 6443.
  for url in $JOIN_CANDIDATES; do
    if curl -ksf --max-time 5 "$url/ping" >/dev/null 2>&1 || wget -q -T 5 --no-check-certificate -O /dev/null "$url/ping" 2>/dev/null; then
      say "another server answers at $url: joining the existing cluster instead of bootstrapping a new one"
      as_root mkdir -p "${join_marker%/*}"
      printf '%s\n' "$url" | as_root tee "$join_marker" >/dev/null
      break
    fi
  done
fi
joined=""
if [ -n "$JOIN_CANDIDATES" ]; then joined=$(as_root cat "$join_marker" 2>/dev/null || true); fi
if [ -n "$joined" ]; then
  as_root sed -i -e '/^cluster-init: true$/d' "$config.new"
  printf 'server: %s\n' "$joined" | as_root tee -a "$config.new" >/dev/null
fi

# node-label and node-taint act only when a node registers ("they can only be added once and not changed
# after that", docs.k3s.io/cli/agent#node-labels-and-taints-for-agents): later changes reach the Node through
# its NodePatch, so they are left out of the digest and a label or taint change restarts nothing.
digest=$({ as_root awk '/^node-(label|taint):/ { skip = 1; next } skip && /^- / { next } { skip = 0; print }' "$config.new"
           printf '%s\n' "$K3S_VERSION" "$STAGED_SHA256"; } | sha256sum | cut -d' ' -f1)
previous=$(as_root cat "$digest_file" 2>/dev/null || true)
installed=$(as_root /usr/local/bin/k3s --version 2>/dev/null | awk 'NR == 1 { print $3 }' || true)

if [ "$ROLE" = agent ] && [ -n "$installed" ] && [ "$installed" != "$K3S_VERSION" ]; then
  # Upgrade order (Kubernetes version skew policy): a kubelet must not be newer than the API servers, so
  # wait until every server runs the new version. Servers upgrade one at a time in the Pulumi graph. Read
  # as root: agent/ is mode 0700; a version that cannot be read is waited for, then fails, never skipped.
  servers_at_version() {
    versions=$(kubectl --kubeconfig /var/lib/rancher/k3s/agent/kubelet.kubeconfig get nodes \
      -l node-role.kubernetes.io/control-plane=true --no-headers \
      -o custom-columns=V:.status.nodeInfo.kubeletVersion) || return 1
    [ -n "$versions" ] && ! printf '%s\n' "$versions" | grep -qvxF "$K3S_VERSION"
  }
  if ! servers_at_version; then
    say "waiting for every server to run $K3S_VERSION before upgrading this agent from $installed"
    wait_until "$WAIT_SECONDS" "every server to run $K3S_VERSION (read with this agent's kubelet credentials)" \
      "kubectl get nodes -l node-role.kubernetes.io/control-plane=true (are all servers upgraded? is the API reachable from $NODE_NAME?)" \
      servers_at_version
  fi
fi
as_root mv -f "$config.new" "$config"

installer=$(mktemp)
trap 'rm -f "$installer"' EXIT
if [ -z "$INSTALL_URL" ]; then
  as_root install -m 0755 "$STAGE_DIR/k3s" /usr/local/bin/k3s
  as_root mkdir -p /var/lib/rancher/k3s/agent/images
  as_root install -m 0644 "$STAGE_DIR/$IMAGES_FILE" "/var/lib/rancher/k3s/agent/images/$IMAGES_FILE"
  # Only a registries.yaml this run staged (the copies have no delete): a stale one from an earlier
  # k3s.airgap.registries is removed, and /etc/rancher/k3s/registries.yaml (k3s.registries) is left alone.
  case " $STAGED_SHA256 " in
    *" registries.yaml="*) as_root install -m 0600 "$STAGE_DIR/registries.yaml" /etc/rancher/k3s/registries.yaml ;;
    *) as_root rm -f "$STAGE_DIR/registries.yaml" ;;
  esac
  cp "$STAGE_DIR/install.sh" "$installer"
  skip_download=true
else
  curl -sfL --retry 3 --max-time 120 "$INSTALL_URL" -o "$installer" || fail "cannot download the K3s installer from $INSTALL_URL"
  skip_download=false
fi

# The installer never starts the unit itself: its `systemctl restart` of a Type=notify unit with
# TimeoutStartSec=0 blocks until K3s is ready, forever if it never is. We restart without blocking and
# wait with a deadline.
say "installing K3s $K3S_VERSION as $ROLE"
INSTALL_K3S_VERSION="$K3S_VERSION" INSTALL_K3S_EXEC="$ROLE" INSTALL_K3S_SKIP_DOWNLOAD="$skip_download" \
  INSTALL_K3S_SKIP_START=true sh "$installer" >&2 \
  || fail "K3s's installer failed. Check: journalctl -u $service -n 100 on $NODE_NAME"

if [ "$digest" != "$previous" ] || ! systemctl is-active --quiet "$service"; then
  say "starting $service (config.yaml, version or staged files changed, or it was not running)"
  as_root rm -f "$digest_file"
  as_root systemctl restart --no-block "$service" || fail "systemctl could not start $service on $NODE_NAME"
else
  say "config.yaml, version and staged files unchanged: $service keeps running"
fi

if [ "$ROLE" = server ]; then
  wait_until "$WAIT_SECONDS" "the K3s API on $NODE_NAME" \
    "journalctl -u k3s -n 100 on $NODE_NAME (token, tls-san, etcd quorum, ports 6443/2379-2380)" \
    kubectl get --raw=/readyz
  wait_until "$WAIT_SECONDS" "node $NODE_NAME to be Ready" \
    "kubectl describe node $NODE_NAME (CNI, kubelet, disk pressure)" \
    kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout=10s
else
  wait_until "$WAIT_SECONDS" "the k3s-agent service on $NODE_NAME" \
    "journalctl -u k3s-agent -n 100 on $NODE_NAME (server URL reachable on 6443, token, node name not taken)" \
    systemctl is-active --quiet k3s-agent
  # An active service is not yet a working node, and the cluster's readiness command runs again only for a new
  # version, not for a config change: wait here for this agent's own Node, read with its kubelet credentials
  # as servers_at_version does.
  node_ready_at_version() {
    state=$(kubectl --kubeconfig /var/lib/rancher/k3s/agent/kubelet.kubeconfig get node "$NODE_NAME" --no-headers \
      -o 'custom-columns=V:.status.nodeInfo.kubeletVersion,R:.status.conditions[?(@.type=="Ready")].status') || return 1
    printf '%s\n' "$state" | awk -v v="$K3S_VERSION" '$1 == v && $2 == "True" { ok = 1 } END { exit !ok }'
  }
  wait_until "$WAIT_SECONDS" "node $NODE_NAME to be Ready and run $K3S_VERSION" \
    "kubectl describe node $NODE_NAME (CNI, kubelet, disk pressure); journalctl -u k3s-agent -n 100 on $NODE_NAME" \
    node_ready_at_version
fi
printf '%s\n' "$digest" | as_root tee "$digest_file" >/dev/null
say "K3s $K3S_VERSION $ROLE is up"
