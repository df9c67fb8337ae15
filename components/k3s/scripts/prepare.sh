# Host preparation, persisted across reboots: kernel modules and sysctls that K3s and Kubeflow need.
# Parameters: NODE_NAME MODULES (space separated) SYSCTLS (newline separated key=value lines)
#             SYSCTL_FILE MODULES_FILE PACKAGES (space separated, may be empty)
#             SERVICES (systemd units to enable and start after the packages, may be empty)
: "${MODULES?}" "${SYSCTLS:?}" "${SYSCTL_FILE:?}" "${MODULES_FILE:?}" "${PACKAGES?}" "${SERVICES?}"
if [ -n "$PACKAGES" ]; then
  # shellcheck disable=SC2086 # PACKAGES is a word list on purpose
  if command -v apt-get >/dev/null 2>&1; then
    # A fresh cloud VM runs unattended-upgrades/cloud-init apt at boot: wait for its lock (bounded) instead
    # of failing at once (apt >= 1.9.11 honours DPkg::Lock::Timeout).
    apt_wait="-o DPkg::Lock::Timeout=600"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get $apt_wait update -q >/dev/null \
      || fail "apt-get update failed (or its lock stayed busy for 10 minutes). Check: sudo lsof /var/lib/apt/lists/lock; systemctl status unattended-upgrades"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get $apt_wait install -y -q $PACKAGES >/dev/null \
      || fail "cannot install $PACKAGES with apt-get (or the dpkg lock stayed busy for 10 minutes). Check: sudo lsof /var/lib/dpkg/lock-frontend"
  elif command -v dnf >/dev/null 2>&1; then
    as_root dnf install -y -q $PACKAGES >/dev/null
  else
    fail "cannot install host packages ($PACKAGES): neither apt-get nor dnf found"
  fi
fi
for service in $SERVICES; do
  as_root systemctl enable --now "$service" >/dev/null 2>&1 || fail "cannot enable and start $service"
done
# shellcheck disable=SC2086 # MODULES is a word list on purpose
printf '%s\n' $MODULES | as_root tee "$MODULES_FILE" >/dev/null
for module in $MODULES; do
  as_root modprobe "$module" || fail "cannot load kernel module $module"
done
printf '%s\n' "$SYSCTLS" | as_root tee "$SYSCTL_FILE" >/dev/null
as_root sysctl -q -p "$SYSCTL_FILE" >/dev/null || fail "sysctl could not apply $SYSCTL_FILE"
say "host prepared ($SYSCTL_FILE, $MODULES_FILE)"
