# Install or re-apply K3s on one node. The node's config.yaml (it holds the cluster token) arrives on
# stdin and is written with mode 0600; it is never part of this command's text.
# Parameters: NODE_NAME ROLE (server|agent) K3S_VERSION INSTALL_URL (empty when air-gapped)
#             STAGE_DIR (air-gapped files) IMAGES_FILE UPGRADE (false on create, true on update)
#             WAIT_SECONDS
: "${ROLE:?}" "${K3S_VERSION:?}" "${INSTALL_URL?}" "${STAGE_DIR:?}" "${IMAGES_FILE?}" "${UPGRADE:?}" "${WAIT_SECONDS:?}"
config=/etc/rancher/k3s/config.yaml
as_root mkdir -p /etc/rancher/k3s
as_root install -m 0600 /dev/null "$config.new"
as_root tee "$config.new" >/dev/null
as_root mv -f "$config.new" "$config"

if [ "$ROLE" = agent ] && [ "$UPGRADE" = true ] && [ -f /var/lib/rancher/k3s/agent/kubelet.kubeconfig ]; then
  # Upgrade order: an agent's kubelet must not be newer than the API servers, so wait (bounded) until
  # every server reports the new version. Servers upgrade one at a time in the Pulumi graph.
  servers_at_version() {
    versions=$(as_root /usr/local/bin/k3s kubectl --kubeconfig /var/lib/rancher/k3s/agent/kubelet.kubeconfig get nodes \
      -l node-role.kubernetes.io/control-plane=true --no-headers \
      -o custom-columns=V:.status.nodeInfo.kubeletVersion) || return 2
    [ -n "$versions" ] && ! printf '%s\n' "$versions" | grep -qvxF "$K3S_VERSION"
  }
  rc=0; servers_at_version || rc=$?
  if [ "$rc" -eq 2 ]; then
    say "cannot read the servers' versions with the node credentials; upgrading without waiting"
  elif [ "$rc" -ne 0 ]; then
    say "waiting for every server to run $K3S_VERSION before upgrading this agent"
    wait_until "$WAIT_SECONDS" "the servers to run $K3S_VERSION" \
      "kubectl get nodes -l node-role.kubernetes.io/control-plane=true (are all servers upgraded?)" servers_at_version
  fi
fi

installer=$(mktemp)
trap 'rm -f "$installer"' EXIT
if [ -z "$INSTALL_URL" ]; then
  # Air-gapped: the binary, images and installer were copied to STAGE_DIR by Pulumi (CopyToRemote).
  as_root install -m 0755 "$STAGE_DIR/k3s" /usr/local/bin/k3s
  as_root mkdir -p /var/lib/rancher/k3s/agent/images
  as_root install -m 0644 "$STAGE_DIR/$IMAGES_FILE" "/var/lib/rancher/k3s/agent/images/$IMAGES_FILE"
  if [ -f "$STAGE_DIR/registries.yaml" ]; then
    as_root install -m 0600 "$STAGE_DIR/registries.yaml" /etc/rancher/k3s/registries.yaml
  fi
  cp "$STAGE_DIR/install.sh" "$installer"
  skip_download=true
else
  curl -sfL --retry 3 "$INSTALL_URL" -o "$installer" || fail "cannot download the K3s installer from $INSTALL_URL"
  skip_download=false
fi

# install.sh hashes the binary, unit and env file but not config.yaml, so an update forces a restart.
say "installing K3s $K3S_VERSION as $ROLE"
INSTALL_K3S_VERSION="$K3S_VERSION" INSTALL_K3S_EXEC="$ROLE" INSTALL_K3S_SKIP_DOWNLOAD="$skip_download" \
  INSTALL_K3S_FORCE_RESTART="$UPGRADE" sh "$installer" >&2 \
  || fail "K3s's installer failed. Check: journalctl -u k3s${ROLE#server} -n 100 on $NODE_NAME"

if [ "$ROLE" = server ]; then
  wait_until "$WAIT_SECONDS" "the K3s API on $NODE_NAME" \
    "journalctl -u k3s -n 100 on $NODE_NAME (token, tls-san, etcd quorum, ports 6443/2379-2380)" \
    as_root /usr/local/bin/k3s kubectl get --raw=/readyz
  wait_until "$WAIT_SECONDS" "node $NODE_NAME to be Ready" \
    "kubectl describe node $NODE_NAME (CNI, kubelet, disk pressure)" \
    as_root /usr/local/bin/k3s kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout=10s
else
  wait_until "$WAIT_SECONDS" "the k3s-agent service on $NODE_NAME" \
    "journalctl -u k3s-agent -n 100 on $NODE_NAME (server URL reachable on 6443, token)" \
    systemctl is-active k3s-agent
fi
say "K3s $K3S_VERSION $ROLE is up"
