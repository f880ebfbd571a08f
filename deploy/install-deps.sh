#!/usr/bin/env bash
# Install the Debian packages Berth's demo, tests and benchmarks use. Idempotent: does
# nothing (and needs no network) when everything is already installed.
#   busybox-static        test and demo images are made from the static busybox
#   g++                   libFuzzer, built by the fuzz harnesses (fuzz/)
#   runc crun             peers for conformance runs and benchmarks
#   docker.io             the real dockerd/containerd for interop tests (docker CLI too)
#   podman                the real podman (with conmon) for berth-runtime drop-in tests
#   docker-registry       a real registry on 127.0.0.1 for pull/push tests
#   skopeo apache2-utils  pushing test images; htpasswd for registry auth tests
#   hyperfine             benchmarks
#   bsdutils              script(1): a terminal for the -t/-it tests
#   iptables              networking tests
#   gcc libc6-dev         the runtime's seccomp tests build a static syscall probe
#   openssl iproute2      TLS tests: certificates; a network namespace with an address
#   docker-compose        `build:` sections against berthd (the build tests)
#   python3-docker        docker-py's images.build against berthd (the build tests)
set -euo pipefail

# A generic gRPC client for the supervisor's reflection/health test (from PyPI).
python_modules_ok() { python3 -c "import grpc, grpc_reflection, grpc_health" 2>/dev/null; }
ensure_python_modules() {
  python_modules_ok || python3 -m pip install --quiet --disable-pip-version-check \
    grpcio grpcio-reflection grpcio-health-checking
}

packages=(busybox-static g++ bsdutils runc crun docker.io podman docker-registry skopeo apache2-utils hyperfine iptables openssl gcc libc6-dev iproute2 docker-compose python3-docker)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  ensure_python_modules
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: need root to install: ${missing[*]}" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Package scripts must not start services (dockerd, the registry) on this machine.
policy=/usr/sbin/policy-rc.d
created_policy=no
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created_policy=yes
fi
trap '[ "$created_policy" = yes ] && rm -f "$policy"' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
ensure_python_modules
