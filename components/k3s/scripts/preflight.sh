# Read-only preflight of a node: prints one "check<TAB>status<TAB>detail" line per check and a final
# "result<TAB>ok|fail<TAB>..." line, and exits 1 when a check fails. It changes nothing on the host.
# Parameters: NODE_NAME EXPECT_ARCH (amd64|arm64) GPU (none|nvidia|jetson) MIN_MEMORY_MIB MIN_DISK_GIB
#             NEED_CURL (true|false) CURL_FOR (why, for the message) GPU_TOOLKIT (host|operator|none) INSTALL_DRIVER (true|false)
#             FLANNEL_BACKEND (K3s's flannel-backend, vxlan by default)
#             IMAGES_DISK_GIB (extra GiB the images need, 0 = none)
# The gpu-toolkit line says which GPU case the node is in, as key=value fields after the status:
#   case=host|operator|jetson|none runtime=<path of nvidia-container-runtime, or none>
: "${EXPECT_ARCH:?}" "${GPU:?}" "${MIN_MEMORY_MIB:?}" "${MIN_DISK_GIB:?}" "${NEED_CURL:?}" "${FLANNEL_BACKEND:?}"
: "${GPU_TOOLKIT:?}" "${INSTALL_DRIVER:?}" "${IMAGES_DISK_GIB:?}"
printf 'started\tok\t%s\n' "$(date +%s)"  # when this run began: the smoke step's installSeconds counts from here
failures=""
report() {
  printf '%s\t%s\t%s\n' "$1" "$2" "$3"
  if [ "$2" = fail ]; then failures="${failures}${failures:+; }$1: $3"; fi
}

kernel=$(uname -s)
if [ "$kernel" = Linux ]; then
  os_id=unknown
  # shellcheck disable=SC1091 # the host's own file, read at run time
  if [ -r /etc/os-release ]; then os_id=$(. /etc/os-release && printf '%s %s' "${ID:-linux}" "${VERSION_ID:-}"); fi
  report os ok "$os_id"
  model=$(tr -d '\000' < /sys/firmware/devicetree/base/model 2>/dev/null || true)
  case "$model" in
    *"Raspberry Pi"*)
      # Ubuntu 21.10+ on a Raspberry Pi ships vxlan in linux-modules-extra-raspi, and flannel's default
      # backend needs it (docs.k3s.io/advanced#enabling-vxlan-for-ubuntu-2110-on-raspberry-pi).
      if [ "$FLANNEL_BACKEND" != vxlan ]; then
        report vxlan skip "flannel-backend is $FLANNEL_BACKEND"
      elif [ -d /sys/module/vxlan ] || modinfo vxlan >/dev/null 2>&1; then
        report vxlan ok "vxlan kernel module available ($model)"
      elif [ "${os_id%% *}" = ubuntu ]; then
        report vxlan fail "$model on Ubuntu has no vxlan kernel module: sudo apt install linux-modules-extra-raspi && sudo reboot"
      else
        report vxlan fail "$model has no vxlan kernel module, which flannel's vxlan backend needs"
      fi
      ;;
  esac
else
  report os fail "K3s needs Linux, found $kernel"
fi

machine=$(uname -m)
case "$machine" in
  x86_64|amd64) arch=amd64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) arch=$machine ;;
esac
if [ "$arch" = "$EXPECT_ARCH" ]; then
  report arch ok "$arch"
else
  report arch fail "node is $arch ($machine) but its config says arch: $EXPECT_ARCH; fix the node's arch setting"
fi

if [ -d /run/systemd/system ]; then
  report systemd ok "systemd is PID 1"
else
  report systemd fail "K3s's installer needs systemd (on WSL2 set [boot] systemd=true in /etc/wsl.conf)"
fi

if [ -r /sys/fs/cgroup/cgroup.controllers ]; then
  if grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
    report memory-cgroup ok "cgroup v2 with memory controller"
  else
    report memory-cgroup fail "memory cgroup controller missing: add 'cgroup_memory=1 cgroup_enable=memory' to the kernel command line (/boot/firmware/cmdline.txt on a Raspberry Pi) and reboot"
  fi
elif [ -r /proc/cgroups ] && awk '$1 == "memory" && $4 == 1 { found = 1 } END { exit !found }' /proc/cgroups; then
  report memory-cgroup ok "cgroup v1 with memory controller"
else
  report memory-cgroup fail "memory cgroup not enabled: add 'cgroup_memory=1 cgroup_enable=memory' to the kernel command line and reboot"
fi

if [ "$(id -u)" -eq 0 ]; then
  report sudo ok "running as root"
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  report sudo ok "passwordless sudo"
else
  report sudo fail "user $(id -un) needs passwordless sudo: add '$(id -un) ALL=(ALL) NOPASSWD:ALL' to /etc/sudoers.d/"
fi

disk_dir=/var/lib
[ -d /var/lib/rancher ] && disk_dir=/var/lib/rancher
free_kib=$(df -Pk "$disk_dir" | awk 'NR == 2 { print $4 }')
free_gib=$((free_kib / 1048576))
need_gib=$((MIN_DISK_GIB + ${IMAGES_DISK_GIB:-0}))
if [ "$free_gib" -ge "$need_gib" ]; then
  report disk ok "${free_gib} GiB free on $disk_dir"
else
  report disk fail "${free_gib} GiB free on $disk_dir, the profile needs ${MIN_DISK_GIB} GiB (preflight.minDiskGiB) + ${IMAGES_DISK_GIB:-0} GiB for images (images.diskGiB, k3s.airgap.platformImages)"
fi

mem_kib=$(awk '$1 == "MemTotal:" { print $2 }' /proc/meminfo)
mem_mib=$((mem_kib / 1024))
if [ "$mem_mib" -ge "$MIN_MEMORY_MIB" ]; then
  report memory ok "${mem_mib} MiB"
else
  report memory fail "${mem_mib} MiB of memory, the profile needs ${MIN_MEMORY_MIB} MiB (preflight.minMemoryMiB)"
fi

nvidia_pci() { grep -qs 10de /sys/bus/pci/devices/*/vendor; }
# K3s registers the `nvidia` runtime at start when it finds nvidia-container-runtime in
# /usr/local/nvidia/toolkit (the GPU operator's toolkit) or /usr/bin (NVIDIA's package, JetPack).
host_runtime=none
if [ -x /usr/bin/nvidia-container-runtime ]; then host_runtime=/usr/bin/nvidia-container-runtime; fi
case "$GPU" in
  nvidia)
    if [ "$INSTALL_DRIVER" = true ]; then
      # gpu.installDriver: the operator's driver container builds the driver; no /dev/nvidia* yet.
      if nvidia_pci; then
        report gpu ok "NVIDIA PCI device present; the GPU operator installs the driver (gpu.installDriver)"
      else
        report gpu fail "the node says gpu: nvidia but no NVIDIA PCI device (vendor 10de) was found"
      fi
    elif ls /dev/nvidia[0-9]* >/dev/null 2>&1; then
      report gpu ok "NVIDIA device nodes present"
    elif nvidia_pci; then
      report gpu fail "an NVIDIA PCI device is present but /dev/nvidia* is missing: install the NVIDIA driver on the host, or set gpu.installDriver: true"
    else
      report gpu fail "the node says gpu: nvidia but no NVIDIA device was found"
    fi
    if [ "$GPU_TOOLKIT" = host ]; then
      if [ "$host_runtime" != none ]; then
        report gpu-toolkit ok "case=host runtime=$host_runtime"
      else
        report gpu-toolkit fail "case=host runtime=none - gpu.toolkit is host but /usr/bin/nvidia-container-runtime is missing: install NVIDIA's nvidia-container-toolkit package, or set gpu.toolkit: operator (its toolkit restarts K3s once)"
      fi
    else
      report gpu-toolkit ok "case=operator runtime=$host_runtime"
    fi
    ;;
  jetson)
    if [ -e /etc/nv_tegra_release ] || ls /dev/nvhost-* >/dev/null 2>&1; then
      report gpu ok "Jetson (Tegra) GPU present"
    else
      report gpu fail "the node says gpu: jetson but no Tegra GPU was found (/etc/nv_tegra_release, /dev/nvhost-*)"
    fi
    # The node's default runtime is nvidia (K3s default-runtime): without the runtime no pod starts.
    if [ "$host_runtime" != none ]; then
      report gpu-toolkit ok "case=jetson runtime=$host_runtime"
    else
      report gpu-toolkit fail "case=jetson runtime=none - JetPack's nvidia-container-runtime is missing (/usr/bin/nvidia-container-runtime): install the nvidia-container package (sudo apt-get install nvidia-container)"
    fi
    ;;
  *)
    report gpu skip "no GPU configured"
    report gpu-toolkit skip "case=none runtime=$host_runtime"
    ;;
esac

if [ "$NEED_CURL" = true ]; then
  if command -v curl >/dev/null 2>&1; then
    report curl ok "$(command -v curl)"
  else
    report curl fail "curl is needed: $CURL_FOR; install it"
  fi
else
  report curl skip "not needed here (air-gapped install, no smoke step on this node)"
fi

if [ -n "$failures" ]; then
  report result fail "$failures"
  say "preflight failed: $failures"
  exit 1
fi
printf 'result\tok\tall checks passed\n'
