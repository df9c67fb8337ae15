# Footprint guard, run on the first server once every node is Ready and before any Kubeflow object:
# sums the nodes' allocatable CPU and memory and stops when the selected components need more
# (the figures and the advice come from components/footprint.py). It changes nothing.
# Parameters: NODE_NAME NEED_CPU_M NEED_MEMORY_MI ADVICE K3S_BIN
: "${NEED_CPU_M:?}" "${NEED_MEMORY_MI:?}" "${ADVICE:?}" "${K3S_BIN:?}"
capacity=$(as_root "$K3S_BIN" kubectl get nodes \
  -o jsonpath='{range .items[*]}{.status.allocatable.cpu}{" "}{.status.allocatable.memory}{"\n"}{end}')
# CPU: "4" or "3500m"; memory: "16318340Ki", "16Gi", "512Mi" or bytes.
totals=$(printf '%s\n' "$capacity" | awk '
  NF == 2 {
    c = $1; if (c ~ /m$/) { sub(/m$/, "", c); cpu += c } else { cpu += c * 1000 }
    m = $2
    if (m ~ /Ki$/) { sub(/Ki$/, "", m); mem += m / 1024 }
    else if (m ~ /Mi$/) { sub(/Mi$/, "", m); mem += m }
    else if (m ~ /Gi$/) { sub(/Gi$/, "", m); mem += m * 1024 }
    else if (m ~ /Ti$/) { sub(/Ti$/, "", m); mem += m * 1048576 }
    else { mem += m / 1048576 }
  }
  END { printf "%d %d\n", cpu, mem }')
have_cpu=${totals% *}
have_mem=${totals#* }
short=""
if [ "$NEED_CPU_M" -gt "$have_cpu" ]; then
  short="${NEED_CPU_M}m CPU needed, ${have_cpu}m allocatable"
fi
if [ "$NEED_MEMORY_MI" -gt "$have_mem" ]; then
  short="${short}${short:+; }${NEED_MEMORY_MI}Mi memory needed, ${have_mem}Mi allocatable"
fi
if [ -n "$short" ]; then
  fail "the selected Kubeflow components do not fit the nodes: ${short}. ${ADVICE}"
fi
say "Kubeflow footprint ${NEED_CPU_M}m CPU / ${NEED_MEMORY_MI}Mi fits the nodes (${have_cpu}m / ${have_mem}Mi allocatable)"
