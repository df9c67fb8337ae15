# Shared code of the SSH test bed's stubs (tests/sshbed). Installed in each sandbox as
# /usr/local/lib/k3sbed/lib.sh; @CLUSTER@ is replaced by the bed's shared cluster-state directory.
# The simulated cluster lives in files:
#   $C/nodes/<node>   key=value lines: role version address cluster password ready
#   $C/etcd/<node>    the etcd cluster id this server is a member of
#   $C/calls.log      "<host>\t<command line>" for every stub call, in order, across hosts
#   $C/hang/<host>    present: K3s on that host never becomes ready (Type=notify start blocks)
#   $C/notready/<host> present: K3s on that host starts (the unit is active) but its Node stays NotReady
#   $C/objects/<cluster>/configmap/<namespace>/<name>   a ConfigMap in that cluster (the identity marker)
# Per sandbox: /run/k3sbed/host (bed host name), /run/k3sbed/address (its node address),
#   /run/k3sbed/units/<unit> (active|activating|failed|inactive), /run/k3sbed/journal.
C=@CLUSTER@
HOST=$(cat /run/k3sbed/host 2>/dev/null || echo unknown)
ADDRESS=$(cat /run/k3sbed/address 2>/dev/null || echo 127.0.0.1)
U=/run/k3sbed/units
log() { printf '%s\t%s\n' "$HOST" "$*" >> "$C/calls.log"; }
journal() { printf '%s\n' "$*" >> /run/k3sbed/journal; printf '%s\n' "$*" >&2; }
node_get() { sed -n "s/^$2=//p" "$C/nodes/$1" 2>/dev/null | head -n 1; }
cfg() { sed -n "s/^$1: *//p" /etc/rancher/k3s/config.yaml 2>/dev/null | head -n 1 | tr -d "'\""; }
unit_state() { cat "$U/$1" 2>/dev/null || echo inactive; }
active_server_at() {  # active_server_at ADDRESS -> node name of an active server there
  for f in "$C"/nodes/*; do
    [ -f "$f" ] || continue
    n=${f##*/}
    if [ "$(node_get "$n" role)" = server ] && [ "$(node_get "$n" address)" = "$1" ] && [ "$(node_get "$n" ready)" = true ]; then
      echo "$n"; return 0
    fi
  done
  return 1
}

# K3s starting (what the k3s/k3s-agent unit does), simulated: validates the join like K3s does.
k3s_start() {
  unit=$1
  role=server; [ "$unit" = k3s-agent ] && role=agent
  name=$(cfg node-name); [ -n "$name" ] || name=$(hostname)
  version=$(/usr/local/bin/k3s --version 2>/dev/null | awk 'NR == 1 { print $3 }')
  [ -n "$version" ] || { journal "k3s binary missing"; return 1; }
  token=$(cfg token)
  mkdir -p /etc/rancher/node
  [ -s /etc/rancher/node/password ] || od -An -N8 -tx1 /dev/urandom | tr -d ' \n' > /etc/rancher/node/password
  password=$(cat /etc/rancher/node/password)
  if [ -f "$C/nodes/$name" ] && [ "$(node_get "$name" password)" != "$password" ]; then
    # K3s's node password check (docs.k3s.io/architecture#how-agent-node-registration-works)
    journal "Failed to validate node password for $name: duplicate hostname or contents of /etc/rancher/node/password changed"
    return 1
  fi
  target=$(cfg server | sed -e 's|^https://||' -e 's|:.*||')
  cluster=""
  if [ "$role" = server ]; then
    mkdir -p /var/lib/rancher/k3s/server/db
    if [ -s /var/lib/rancher/k3s/server/db/cluster-id ]; then
      cluster=$(cat /var/lib/rancher/k3s/server/db/cluster-id)
    elif [ -n "$target" ]; then
      joined=$(active_server_at "$target") || { journal "failed to join $target: no server answers"; return 1; }
      cluster=$(node_get "$joined" cluster)
    else
      cluster="$name-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
      [ -f "$C/token" ] || printf '%s' "$token" > "$C/token"
    fi
    if [ -n "$target" ] || [ "$(cfg cluster-init)" = true ]; then
      echo "$cluster" > "$C/etcd/$name"
      mkdir -p /var/lib/rancher/k3s/server/db/etcd
    fi
    echo "$cluster" > /var/lib/rancher/k3s/server/db/cluster-id
    printf 'apiVersion: v1\nkind: Config\n# bed admin kubeconfig of %s\n' "$name" > /etc/rancher/k3s/k3s.yaml
    chmod 600 /etc/rancher/k3s/k3s.yaml
  else
    joined=$(active_server_at "$target") || { journal "agent cannot reach server $target"; return 1; }
    cluster=$(node_get "$joined" cluster)
  fi
  if [ -f "$C/token" ] && [ "$(cat "$C/token")" != "$token" ]; then
    journal "token does not match the cluster's"; return 1
  fi
  mkdir -p /var/lib/rancher/k3s/agent
  chmod 700 /var/lib/rancher/k3s/agent
  printf 'apiVersion: v1\nkind: Config\n# kubelet of %s\n' "$name" > /var/lib/rancher/k3s/agent/kubelet.kubeconfig
  uid=$(node_get "$name" uid); [ -n "$uid" ] || uid=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
  ready=true; [ -e "$C/notready/$HOST" ] && ready=false  # e.g. kubelet up, CNI not (yet) ready
  printf 'role=%s\nversion=%s\naddress=%s\ncluster=%s\npassword=%s\nready=%s\nhost=%s\nuid=%s\n' \
    "$role" "$version" "$ADDRESS" "$cluster" "$password" "$ready" "$HOST" "$uid" > "$C/nodes/$name.tmp"
  mv "$C/nodes/$name.tmp" "$C/nodes/$name"
}

k3s_stop() {
  name=$(cfg node-name)
  if [ -n "$name" ] && [ -f "$C/nodes/$name" ] && [ "$(node_get "$name" host)" = "$HOST" ]; then
    sed -i 's/^ready=.*/ready=false/' "$C/nodes/$name"
  fi
}

k3s_kubectl() {
  kubeconfig=/etc/rancher/k3s/k3s.yaml
  args=""; ignore_missing=false
  while [ $# -gt 0 ]; do
    case $1 in
      --kubeconfig) kubeconfig=$2; shift 2 ;;
      --kubeconfig=*) kubeconfig=${1#*=}; shift ;;
      --ignore-not-found|--ignore-not-found=true) ignore_missing=true; shift ;;
      --timeout=*|--request-timeout=*|--ignore-daemonsets|--delete-emptydir-data|--force|--ignore-not-found=*|--grace-period=*) shift ;;
      *) args="$args $1"; shift ;;
    esac
  done
  if ! [ -r "$kubeconfig" ]; then
    echo "error: open $kubeconfig: permission denied" >&2; return 1
  fi
  # The admin kubeconfig talks to this server's own API (127.0.0.1:6443): nothing answers while its K3s is down.
  if [ "$kubeconfig" = /etc/rancher/k3s/k3s.yaml ] && [ "$(unit_state k3s)" != active ]; then
    echo "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?" >&2; return 1
  fi
  set -f  # JSONPath filters ([?(...)]) are arguments, not file patterns
  # shellcheck disable=SC2086
  set -- $args
  set +f
  case "$*" in
    "get --raw=/readyz") [ "$(unit_state k3s)" = active ] && echo ok ;;
    "wait --for=condition=Ready node/"*)
      n=${3#node/}; [ "$(node_get "$n" ready)" = true ] || { echo "node $n not Ready" >&2; return 1; } ;;
    "get nodes -l node-role.kubernetes.io/control-plane=true --no-headers -o custom-columns=V:.status.nodeInfo.kubeletVersion")
      for f in "$C"/nodes/*; do [ -f "$f" ] && [ "$(node_get "${f##*/}" role)" = server ] && node_get "${f##*/}" version; done; return 0 ;;
    "get node "*" -o jsonpath={.metadata.uid}")
      if ! [ -f "$C/nodes/$3" ]; then
        $ignore_missing && return 0  # kubectl --ignore-not-found: no output, success
        echo "Error from server (NotFound): nodes \"$3\" not found" >&2; return 1
      fi
      node_get "$3" uid ;;
    "get node "*' --no-headers -o custom-columns=V:.status.nodeInfo.kubeletVersion,R:.status.conditions[?(@.type=="Ready")].status')
      [ -f "$C/nodes/$3" ] || { echo "Error from server (NotFound): nodes \"$3\" not found" >&2; return 1; }
      r=False; [ "$(node_get "$3" ready)" = true ] && r=True
      printf '%s   %s\n' "$(node_get "$3" version)" "$r" ;;
    "get node "*) [ -f "$C/nodes/$3" ] && echo "$3" || { echo "Error from server (NotFound): nodes \"$3\" not found" >&2; return 1; } ;;
    "get nodes"*) for f in "$C"/nodes/*; do [ -f "$f" ] && echo "${f##*/}"; done; return 0 ;;
    "drain "*|"cordon "*)
      [ -f "$C/nodes/$2" ] || { echo "Error from server (NotFound): nodes \"$2\" not found" >&2; return 1; }
      echo "node/$2 drained" ;;
    "create configmap "*" -n "*|"get configmap -n "*" -o name")
      # ConfigMaps live in the cluster of this server (a new cluster has none): what the Kubernetes
      # provider creates (tests/sshbed/engine.py) and the identity check reads.
      cluster=$(cat /var/lib/rancher/k3s/server/db/cluster-id 2>/dev/null) || { echo "bed kubectl: no cluster here" >&2; return 1; }
      [ "$(unit_state k3s)" = active ] || { echo "The connection to the server 127.0.0.1:6443 was refused" >&2; return 1; }
      if [ "$1" = create ]; then
        mkdir -p "$C/objects/$cluster/configmap/$5"; : > "$C/objects/$cluster/configmap/$5/$3"; echo "configmap/$3 created"
      elif [ -f "$C/objects/$cluster/configmap/$4/$5" ]; then
        echo "configmap/$5"
      fi ;;
    "delete node "*)
      # K3s removes a deleted server's etcd member and its node-password secret
      # (docs.k3s.io/architecture#how-agent-node-registration-works; pkg/etcd member removal on Node delete).
      rm -f "$C/nodes/$3" "$C/etcd/$3"; echo "node \"$3\" deleted" ;;
    *) echo "bed kubectl: unsupported: $*" >&2; return 1 ;;
  esac
}

# `k3s ctr`: K3s's embedded containerd client. It answers only while the unit runs (containerd is K3s's
# child); an import needs a readable, non-empty archive and records it in $IMPORTED (per sandbox).
IMPORTED=/var/lib/rancher/k3s/agent/containerd/imported
k3s_ctr() {
  [ "${1:-}" = -n ] && shift 2
  if [ "$(unit_state k3s)" != active ] && [ "$(unit_state k3s-agent)" != active ]; then
    echo "ctr: failed to dial \"/run/k3s/containerd/containerd.sock\": connection refused" >&2; return 1
  fi
  case "${1:-} ${2:-}" in
    "version ") echo "Server: Version: v2.1.5-k3s1 (bed)" ;;
    "images import")
      [ -s "${3:-}" ] || { echo "ctr: open ${3:-}: no such file or empty" >&2; return 1; }
      mkdir -p "${IMPORTED%/*}"; printf '%s\n' "${3##*/}" >> "$IMPORTED"; echo "unpacking ${3##*/} (bed)" ;;
    *) echo "bed ctr: unsupported: $*" >&2; return 1 ;;
  esac
}

k3s_main() {
  case "${0##*/}" in kubectl) log "kubectl $*"; k3s_kubectl "$@"; return ;; esac
  log "k3s $*"
  case "${1:-}" in
    --version|-v) printf 'k3s version %s (bed)\ngo version go1.24\n' "$K3S_STUB_VERSION" ;;
    kubectl) shift; k3s_kubectl "$@" ;;
    ctr) shift; k3s_ctr "$@" ;;
    *) echo "bed k3s: unsupported: $*" >&2; return 1 ;;
  esac
}
