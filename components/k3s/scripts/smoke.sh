# Smoke step: the last step of `pulumi up`, run on the first server (plan: components/smoke_plan.py,
# docs/smoke-test.md). Checks the platform the way its users use it and fails with what failed and
# what to check. Report lines `key<TAB>value` go to stdout, progress to stderr. Full mode reads the
# admin password from stdin (never an argument, never printed); nothing it writes outlives the run.
# Parameters: NODE_NAME MODE (full|pipelines) K3S_BIN DEADLINE_SECONDS STARTED (epoch or empty)
#   RUN (create: the stack's first successful up, update: a later up re-checking it) CHECKS COMPONENTS DASHBOARD_URL LOGIN_EMAIL ADMIN_NAMESPACE
#   CHECK_PROFILE CHECK_DASHBOARD CHECK_PIPELINES CHECK_NOTEBOOKS NOTEBOOK_POD
#   GATEWAY_NAMESPACE GATEWAY_SERVICE TLS_SECRET PUBLIC_CA CA_KEY KFP_NAMESPACE KFP_SERVICE KFP_PORT
#   PIPELINE_YAML GPU_NAMESPACE GPU_PODS GPU_MANIFEST
: "${MODE:?}" "${K3S_BIN:?}" "${DEADLINE_SECONDS:?}" "${STARTED?}" "${RUN:?}" "${CHECKS?}" "${COMPONENTS?}"
: "${DASHBOARD_URL?}" "${LOGIN_EMAIL?}" "${ADMIN_NAMESPACE?}" "${CHECK_PROFILE:?}" "${CHECK_DASHBOARD:?}" "${CHECK_PIPELINES:?}"
: "${CHECK_NOTEBOOKS:?}" "${NOTEBOOK_POD?}"
: "${GATEWAY_NAMESPACE:?}" "${GATEWAY_SERVICE:?}" "${TLS_SECRET:?}" "${PUBLIC_CA:?}" "${CA_KEY:?}"
: "${KFP_NAMESPACE:?}" "${KFP_SERVICE:?}" "${KFP_PORT:?}" "${PIPELINE_YAML:?}"
: "${GPU_NAMESPACE:?}" "${GPU_PODS?}" "${GPU_MANIFEST?}"

deadline=$(($(date +%s) + DEADLINE_SECONDS))
remaining() { _left=$((deadline - $(date +%s))); [ "$_left" -gt 0 ] || _left=0; echo "$_left"; }
kubectl() { as_root "$K3S_BIN" kubectl --request-timeout=30s "$@"; }  # one call never outlives a wait by much
report() { printf '%s\t%s\n' "$1" "$2"; }

command -v curl >/dev/null 2>&1 \
  || fail "the smoke step needs curl on $NODE_NAME: install it, or switch the step off with smoke.enabled: false"
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
jar="$work/cookies"
: >"$jar"
cacert=""
connect_to=""

# web OUT CURL_ARGS...: one request (redirects only with -L), cookies kept in the jar. Prints
# "<status> <final URL>"; status 000 when nothing answered (curl's exit code is in $work/rc).
web() {
  _out=$1
  shift
  _rc=0
  curl -sS --max-time 30 -o "$_out" -w '%{http_code} %{url_effective}' -b "$jar" -c "$jar" \
    ${cacert:+--cacert "$cacert"} ${connect_to:+--connect-to "$connect_to"} "$@" || _rc=$?
  echo "$_rc" >"$work/rc"
}
status() { printf '%s' "${1%% *}"; }
# resolve_url REF PAGE: a link or form action of the page at URL PAGE as an absolute URL (empty: PAGE).
resolve_url() {
  case $1 in
    "") printf '%s' "$2" ;;
    http://*|https://*) printf '%s' "$1" ;;
    /*) printf '%s%s' "$(printf '%s' "$2" | sed 's#^\(https*://[^/]*\).*#\1#')" "$1" ;;
    *) printf '%s/%s' "${2%/*}" "$1" ;;
  esac
}
final_url() { printf '%s' "${1#* }"; }
# json_field KEY FILE: the first "KEY": "value" in a JSON response (KFP puts top-level ids and the
# run's state before any nested object).
json_field() { grep -o "\"$1\": *\"[^\"]*\"" "$2" | head -n 1 | sed 's/.*: *"\(.*\)"$/\1/'; }
snippet() { tr -s '\n\t ' ' ' <"$1" | cut -c 1-300; }

# --- where the platform is reached -------------------------------------------------------------
if [ "$MODE" = full ]; then
  IFS= read -r password || true
  [ -n "${password:-}" ] || fail "no admin password on stdin (the Kubeflow credentials' admin password)"
  printf '%s' "$password" >"$work/password"
  unset password
  hostport=${DASHBOARD_URL#https://}
  hostport=${hostport%%/*}
  host=${hostport%:*}
  port=${hostport##*:}
  [ "$port" != "$hostport" ] || port=443
  base=$DASHBOARD_URL
  api="${base}pipeline/apis/v2beta1/"

  cert_ready() { [ "$(kubectl -n "$GATEWAY_NAMESPACE" get certificate "$TLS_SECRET" \
    -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = True ]; }
  wait_until "$(remaining)" "the gateway certificate $GATEWAY_NAMESPACE/$TLS_SECRET to be issued" \
    "kubectl -n $GATEWAY_NAMESPACE describe certificate $TLS_SECRET; kubectl get challenges -A (Let's Encrypt)" cert_ready
  trusted="publicly trusted (Let's Encrypt)"
  if [ "$PUBLIC_CA" = false ]; then
    # ca.crt: the stack's own CA, what users trust by hand. tls.crt (Let's Encrypt staging, whose roots
    # no trust store holds and whose Secret has no ca.crt): the issued certificate and its intermediate;
    # curl (OpenSSL, 7.68+) takes that intermediate as trust anchor, so the gateway must serve this chain.
    case $CA_KEY in
      ca.crt) trusted="signed by the CA in Secret $GATEWAY_NAMESPACE/$TLS_SECRET" ;;
      tls.crt) trusted="the Let's Encrypt staging certificate issued into Secret $GATEWAY_NAMESPACE/$TLS_SECRET (curl needs OpenSSL and 7.68+ to trust its intermediate)" ;;
      *) fail "unknown CA_KEY $CA_KEY" ;;
    esac
    cacert="$work/ca.crt"
    kubectl -n "$GATEWAY_NAMESPACE" get secret "$TLS_SECRET" -o "jsonpath={.data.${CA_KEY%.crt}\\.crt}" | base64 -d >"$cacert" \
      || fail "cannot read $CA_KEY of Secret $GATEWAY_NAMESPACE/$TLS_SECRET"
    [ -s "$cacert" ] || fail "Secret $GATEWAY_NAMESPACE/$TLS_SECRET has no $CA_KEY to verify the gateway with"
  fi

  # The gateway's own address, for when the host name does not resolve (or answer) on this node.
  gateway_address() {
    svc_type=$(kubectl -n "$GATEWAY_NAMESPACE" get service "$GATEWAY_SERVICE" -o 'jsonpath={.spec.type}')
    gw_addr=""
    gw_port=443
    if [ "$svc_type" = LoadBalancer ]; then
      gw_addr=$(kubectl -n "$GATEWAY_NAMESPACE" get service "$GATEWAY_SERVICE" \
        -o 'jsonpath={.status.loadBalancer.ingress[0].ip}')
    fi
    if [ -z "$gw_addr" ]; then
      gw_addr=$(kubectl get node "$NODE_NAME" -o 'jsonpath={.status.addresses[?(@.type=="InternalIP")].address}')
      gw_port=$(kubectl -n "$GATEWAY_NAMESPACE" get service "$GATEWAY_SERVICE" \
        -o 'jsonpath={.spec.ports[?(@.port==443)].nodePort}')
    fi
    [ -n "$gw_addr" ] && [ -n "$gw_port" ] \
      || fail "cannot find an address of $GATEWAY_NAMESPACE/$GATEWAY_SERVICE (type $svc_type) to test through"
  }
  reached="dns"
  if getent hosts "$host" >/dev/null 2>&1; then
    probe=$(web "$work/probe" "$base")
    case $(cat "$work/rc") in
      6|7|28) reached="" ;;  # resolves but does not answer from here (e.g. no hairpin to the public address)
    esac
  else
    reached=""
  fi
  if [ -z "$reached" ]; then
    gateway_address
    connect_to="$host:$port:$gw_addr:$gw_port"
    reached="gateway $gw_addr:$gw_port"
    say "$host is not reachable by name from $NODE_NAME; testing $DASHBOARD_URL through the gateway at $gw_addr:$gw_port"
  fi
  report reachedThrough "$reached"

  # --- anonymous requests are refused --------------------------------------------------------------
  probe=$(web "$work/probe" "$base")
  case $(status "$probe") in
    2??) fail "$DASHBOARD_URL answered an anonymous request with HTTP $(status "$probe"): the login is not enforced. Check: kubectl -n $GATEWAY_NAMESPACE get authorizationpolicy" ;;
    000)
      if [ "$(cat "$work/rc")" = 60 ]; then
        fail "the HTTPS certificate of $host is not $trusted. Check: kubectl -n $GATEWAY_NAMESPACE describe certificate $TLS_SECRET"
      fi
      fail "$DASHBOARD_URL did not answer (curl exit $(cat "$work/rc")). Check: kubectl -n $GATEWAY_NAMESPACE get service,pods $GATEWAY_SERVICE" ;;
  esac

  # --- login: oauth2-proxy -> Dex's login form -> POST -> callback -> session cookie -----------------
  result=$(web "$work/form" -L "${base}oauth2/start?rd=%2F")
  form_url=$(final_url "$result")
  if [ "$(status "$result")" = 200 ] && ! grep -q 'name="password"' "$work/form"; then
    # With kubeflow.identityProvider Dex has two connectors (the provider and `local`, its static
    # passwords, where the admin is) and shows its chooser (Dex's login.html: one <a href> per connector,
    # the request's query HTML-escaped). The admin logs in through `local`.
    link=$(tr '\n' ' ' <"$work/form" | grep -oE 'href="[^"]*/auth/local(\?[^"]*)?"' | head -n 1 \
      | sed 's/^href="//; s/"$//; s/&amp;/\&/g')
    if [ -n "$link" ]; then
      say "Dex offers a choice of connectors; logging in through its local connector (static passwords)"
      result=$(web "$work/form" -L "$(resolve_url "$link" "$form_url")")
      form_url=$(final_url "$result")
    fi
  fi
  if [ "$(status "$result")" != 200 ] || ! grep -q 'name="password"' "$work/form"; then
    fail "the login did not reach Dex's login form: ${base}oauth2/start ended with HTTP $(status "$result") at $form_url ($(snippet "$work/form")). Check: kubectl -n oauth2-proxy logs deploy/oauth2-proxy; kubectl -n auth logs deploy/dex"
  fi
  # Dex's password form posts to its own URL (action="{{ .PostURL }}"); a theme may wrap the tag over lines.
  action=$(tr '\n' ' ' <"$work/form" | sed -n 's/.*<form[^>]*action="\([^"]*\)".*/\1/p' | sed 's/&amp;/\&/g')
  post_url=$(resolve_url "$action" "$form_url")
  result=$(web "$work/landing" -L --data-urlencode "login=$LOGIN_EMAIL" --data-urlencode "password@$work/password" "$post_url")
  case $(final_url "$result") in
    */dex/auth*) fail "Dex refused the login of $LOGIN_EMAIL (HTTP $(status "$result")): the password Dex knows is not the stack's admin password. Check: kubectl -n auth logs deploy/dex; kubectl -n auth get secret dex-passwords" ;;
  esac
  grep -v '_csrf' "$jar" | grep -q 'oauth2_proxy' \
    || fail "no oauth2-proxy session cookie after the login (ended with HTTP $(status "$result") at $(final_url "$result")). Check: kubectl -n oauth2-proxy logs deploy/oauth2-proxy (code redemption at dex.auth.svc.cluster.local)"
  if grep -q 'RBAC: access denied' "$work/landing"; then
    fail "after the login $DASHBOARD_URL says 'RBAC: access denied'. Check: kubectl get authorizationpolicy -A; kubectl -n $GATEWAY_NAMESPACE get requestauthentication"
  fi
  report login "ok $LOGIN_EMAIL"

  # --- the admin's namespace, the dashboard -----------------------------------------------------------
  if [ "$CHECK_PROFILE" = true ]; then
    wait_until "$(remaining)" "namespace $ADMIN_NAMESPACE (the admin's Profile)" \
      "kubectl get profile $ADMIN_NAMESPACE -o yaml; kubectl -n kubeflow logs deploy/profiles-deployment" \
      kubectl get namespace "$ADMIN_NAMESPACE"
    report profile "ok $ADMIN_NAMESPACE"
    namespace=$ADMIN_NAMESPACE
  else
    report profile "skipped: the profiles component is off, so no Profile creates namespace $ADMIN_NAMESPACE"
    namespace=""
  fi
  if [ "$CHECK_DASHBOARD" = true ]; then
    result=$(web "$work/dashboard" "$base")
    [ "$(status "$result")" = 200 ] \
      || fail "the central dashboard answered HTTP $(status "$result") after the login: $(snippet "$work/dashboard"). Check: kubectl -n kubeflow logs deploy/centraldashboard"
    sees_namespace() {
      _r=$(web "$work/env" "${base}api/workgroup/env-info")
      [ "$(status "$_r")" = 200 ] && grep -q "\"namespace\": *\"$ADMIN_NAMESPACE\"" "$work/env" \
        && grep -qF "$LOGIN_EMAIL" "$work/env"
    }
    wait_until "$(remaining)" "the dashboard to list namespace $ADMIN_NAMESPACE for $LOGIN_EMAIL" \
      "${base}api/workgroup/env-info as $LOGIN_EMAIL; kubectl get profile $ADMIN_NAMESPACE -o yaml" sees_namespace
    report dashboard "ok $ADMIN_NAMESPACE"
  fi
  # --- notebooks: the Jupyter web app's API, and a notebook's admission chain (server-side dry run) ---
  if [ "$CHECK_NOTEBOOKS" = true ] && [ -z "$namespace" ]; then
    # Settings switch profiles on with notebooks; a guard only.
    report notebooksApi "skipped: notebooks live in a Profile namespace and the profiles component is off"
    CHECK_NOTEBOOKS=false
  fi
  if [ "$CHECK_NOTEBOOKS" = true ]; then
    # The web app checks each call with a SubjectAccessReview for the user (kubeflow/kubeflow v1.10.0
    # crud_backend authz.py): the owner's RoleBinding namespaceAdmin, which the Profile controller
    # creates after the namespace and its service accounts, must exist first.
    wait_until "$(remaining)" "RoleBinding namespaceAdmin in $namespace (the admin's rights from their Profile)" \
      "kubectl -n $namespace get rolebindings,serviceaccounts; kubectl -n kubeflow logs deploy/profiles-deployment" \
      kubectl -n "$namespace" get rolebinding namespaceAdmin
    # GET /api/namespaces/<ns>/notebooks behind the /jupyter/ VirtualService (prefix rewritten to /):
    # {"notebooks": [...], "status": 200, "success": true, "user": ...} (crud_backend success_response).
    jupyter_url="${base}jupyter/api/namespaces/$namespace/notebooks"
    jupyter_hint="kubectl -n kubeflow logs deploy/jupyter-web-app-deployment; kubectl -n kubeflow get authorizationpolicy jupyter-web-app -o yaml (it must admit the ingress gateway); kubectl -n $namespace get rolebinding namespaceAdmin -o yaml"
    jupyter_answered() {
      _r=$(web "$work/notebooks" "$jupyter_url")
      jupyter_status=$(status "$_r")
      case $jupyter_status in 000|502|503|504) return 1 ;; esac  # not serving (yet): wait
    }
    wait_until "$(remaining)" "the Jupyter web app to answer $jupyter_url" "$jupyter_hint" jupyter_answered
    if grep -q 'RBAC: access denied' "$work/notebooks"; then
      fail "the Jupyter web app's API refused the logged-in $LOGIN_EMAIL: $jupyter_url answered HTTP $jupyter_status 'RBAC: access denied' (Istio). Check: $jupyter_hint"
    fi
    if [ "$jupyter_status" != 200 ] || ! grep -q '"success": *true' "$work/notebooks"; then
      fail "the Jupyter web app's API did not list the notebooks of $namespace: $jupyter_url answered HTTP $jupyter_status without \"success\": true ($(snippet "$work/notebooks")). Check: $jupyter_hint"
    fi
    report notebooksApi "ok $namespace"
    # A notebook's pod goes through Istio's sidecar injector and Kubeflow's PodDefault webhook (both
    # failurePolicy Fail; the PodDefault webhook selects namespaces labelled
    # app.kubernetes.io/part-of=kubeflow-profile, as Profile namespaces are). A server-side dry run
    # passes them and Pod Security admission without storing the pod or pulling an image.
    printf '%s' "$NOTEBOOK_POD" >"$work/notebook-pod.json"
    if ! kubectl -n "$namespace" create --dry-run=server -o yaml -f - <"$work/notebook-pod.json" \
        >"$work/notebook-pod.yaml" 2>"$work/notebook-pod.err"; then
      fail "a notebook-like pod is refused in $namespace (server-side dry run): $(snippet "$work/notebook-pod.err"). Check: kubectl -n kubeflow logs deploy/admission-webhook-deployment (the PodDefault webhook); kubectl -n istio-system logs deploy/istiod (the sidecar injector); kubectl get mutatingwebhookconfigurations"
    fi
    grep -Eq '^[[:space:]]*(- )?name: istio-proxy$' "$work/notebook-pod.yaml" \
      || fail "a pod in $namespace gets no istio-proxy sidecar (server-side dry run), so a notebook there is not in the mesh and the gateway cannot reach it. Check: kubectl get namespace $namespace --show-labels (istio-injection=enabled, set by the Profile controller); kubectl get mutatingwebhookconfigurations -l app=sidecar-injector; kubectl -n istio-system logs deploy/istiod"
    report notebookPod "ok $namespace: admitted with the istio-proxy sidecar (server-side dry run)"
  fi
  if [ "$CHECK_PIPELINES" = true ] && [ -z "$namespace" ]; then
    # Multi-user Pipelines need a Profile namespace (experiments name one, runs execute as its
    # default-editor); settings refuse pipelines without profiles, so this is a guard only.
    report pipelineRun "skipped: multi-user Pipelines run in a Profile namespace and the profiles component is off"
    CHECK_PIPELINES=false
  fi
else
  ip=$(kubectl -n "$KFP_NAMESPACE" get service "$KFP_SERVICE" -o 'jsonpath={.spec.clusterIP}') \
    || fail "cannot read Service $KFP_NAMESPACE/$KFP_SERVICE"
  base="http://$ip:$KFP_PORT/"
  api="${base}apis/v2beta1/"
  namespace=""
  report reachedThrough "service $KFP_NAMESPACE/$KFP_SERVICE $ip:$KFP_PORT"
fi

# --- Kubeflow Pipelines: API, then one run of the one-step pipeline -----------------------------
if [ "$CHECK_PIPELINES" = true ]; then
  healthy() { [ "$(status "$(web "$work/health" "${api}healthz")")" = 200 ]; }
  wait_until "$(remaining)" "the Pipelines API ${api}healthz" \
    "kubectl -n $KFP_NAMESPACE get pods; kubectl -n $KFP_NAMESPACE logs deploy/ml-pipeline" healthy
  report pipelinesApi ok
  if [ -n "$namespace" ]; then
    runner_ready() { kubectl -n "$namespace" get serviceaccount default-editor; }
    wait_until "$(remaining)" "service account default-editor in $namespace (runs execute as it)" \
      "kubectl -n kubeflow logs deploy/profiles-deployment" runner_ready
  fi
  name="kubeflow-k3s-smoke-$(date +%s)"
  printf '%s' "$PIPELINE_YAML" >"$work/pipeline.yaml"
  # api_call WHAT OUT CURL_ARGS...: a KFP API call that must answer 200.
  api_call() {
    _what=$1
    _out=$2
    shift 2
    _r=$(web "$_out" "$@")
    [ "$(status "$_r")" = 200 ] \
      || fail "the Pipelines API refused to $_what: HTTP $(status "$_r"): $(snippet "$_out"). Check: kubectl -n $KFP_NAMESPACE logs deploy/ml-pipeline"
  }
  api_call "upload the smoke pipeline" "$work/upload" -F "uploadfile=@$work/pipeline.yaml;filename=$name.yaml" \
    "${api}pipelines/upload?name=$name&display_name=$name${namespace:+&namespace=$namespace}"
  pipeline_id=$(json_field pipeline_id "$work/upload")
  api_call "list the pipeline's versions" "$work/versions" "${api}pipelines/$pipeline_id/versions"
  version_id=$(json_field pipeline_version_id "$work/versions")
  api_call "create an experiment" "$work/experiment" -H 'Content-Type: application/json' \
    --data "{\"display_name\": \"$name\"${namespace:+, \"namespace\": \"$namespace\"}}" "${api}experiments"
  experiment_id=$(json_field experiment_id "$work/experiment")
  api_call "create a run" "$work/run" -H 'Content-Type: application/json' \
    --data "{\"display_name\": \"$name\", \"experiment_id\": \"$experiment_id\", \"pipeline_version_reference\": {\"pipeline_id\": \"$pipeline_id\", \"pipeline_version_id\": \"$version_id\"}}" \
    "${api}runs"
  run_id=$(json_field run_id "$work/run")
  [ -n "$pipeline_id" ] && [ -n "$version_id" ] && [ -n "$experiment_id" ] && [ -n "$run_id" ] \
    || fail "the Pipelines API answered without ids (pipeline '$pipeline_id', version '$version_id', experiment '$experiment_id', run '$run_id')"
  say "run $run_id of pipeline $name started${namespace:+ in $namespace}"
  run_done() {
    _r=$(web "$work/state" "${api}runs/$run_id")
    state=$(json_field state "$work/state")
    case $state in SUCCEEDED|FAILED|CANCELED|SKIPPED) return 0 ;; *) return 1 ;; esac
  }
  where="kubectl -n ${namespace:-$KFP_NAMESPACE} get workflows,pods -l pipeline/runid=$run_id"
  wait_until "$(remaining)" "pipeline run $run_id ($name) to finish" "$where; the run in the Pipelines UI" run_done
  run_done || true
  if [ "$state" != SUCCEEDED ]; then
    fail "pipeline run $run_id ($name) ended $state: $(json_field message "$work/state"). Kept for inspection. Check: $where"
  fi
  finished=$(date +%s)
  report pipelineRun "SUCCEEDED $run_id${namespace:+ in $namespace}"
  # Delete what the check created (the run first: a pipeline with runs still referencing it stays).
  for path in "runs/$run_id" "experiments/$experiment_id" "pipelines/$pipeline_id/versions/$version_id" "pipelines/$pipeline_id"; do
    result=$(web "$work/delete" -X DELETE "$api$path")
    [ "$(status "$result")" = 200 ] || say "could not delete $path (HTTP $(status "$result")); delete it in the Pipelines UI"
  done
fi

# --- GPUs: one pod per GPU node runs nvidia-smi (Jetson: sees its GPU device) --------------------
if [ -n "$GPU_PODS" ]; then
  for pod in $GPU_PODS; do
    kubectl -n "$GPU_NAMESPACE" delete pod "$pod" --ignore-not-found --wait=true >/dev/null
  done
  printf '%s' "$GPU_MANIFEST" | kubectl apply -f - >/dev/null || fail "cannot create the GPU check pods"
  for pod in $GPU_PODS; do
    pod_done() {
      phase=$(kubectl -n "$GPU_NAMESPACE" get pod "$1" -o 'jsonpath={.status.phase}')
      [ "$phase" = Succeeded ] || [ "$phase" = Failed ]
    }
    wait_until "$(remaining)" "GPU check pod $pod to run" \
      "kubectl -n $GPU_NAMESPACE describe pod $pod (nvidia.com/gpu allocatable? RuntimeClass nvidia?)" pod_done "$pod"
    pod_done "$pod" || true
    logs=$(kubectl -n "$GPU_NAMESPACE" logs "$pod" 2>&1 | head -n 20) || true
    [ "$phase" = Succeeded ] || fail "GPU check pod $pod failed: $logs. Check: kubectl -n $GPU_NAMESPACE describe pod $pod"
    printf '%s\n' "$logs" >&2
    kubectl -n "$GPU_NAMESPACE" delete pod "$pod" --ignore-not-found --wait=false >/dev/null
    report gpu "ok ${pod#kubeflow-k3s-smoke-gpu-}"
  done
fi

# --- what it measured ------------------------------------------------------------------------------
# installSeconds: from the first server's preflight to the pipeline's success (without Pipelines: to
# the end of the checks). Only the run that creates this step measures an install; a later `up`
# re-checking the stack reports the same difference as sinceInstallStart.
[ -n "${finished:-}" ] || finished=$(date +%s)
report run "$RUN"
if [ -z "$STARTED" ]; then
  report installSeconds ""
  say "installSeconds unknown: the first server's preflight report has no start time"
elif [ "$RUN" = create ]; then
  report installSeconds "$((finished - STARTED))"
  say "installSeconds $((finished - STARTED)): from the preflight of $NODE_NAME (epoch $STARTED) to the pipeline's success"
else
  report installSeconds ""
  report sinceInstallStart "$((finished - STARTED))"
  say "this up re-checked an existing stack: $((finished - STARTED))s since the install began (preflight of $NODE_NAME, epoch $STARTED); not an install time"
fi
report checks "$CHECKS; components: $COMPONENTS"
say "smoke test passed ($MODE)"
