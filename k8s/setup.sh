#!/usr/bin/env bash
# Everything the cluster tests need that is not Python: Debian's prometheus
# (binary only; its packaged service is stopped so port 9090 stays free) and the
# control-plane binaries built by k8s/build.sh (cached per version).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { echo "k8s/setup.sh: $*" >&2; }

stop_packaged_prometheus() {
    # The package starts its own service (and a node exporter) where an init system
    # runs; the launcher starts its own prometheus on a free port instead.
    local svc
    for svc in prometheus prometheus-node-exporter; do
        if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "${svc}" 2>/dev/null; then
            systemctl stop "${svc}" || true
            systemctl disable "${svc}" >/dev/null 2>&1 || true
        fi
        if command -v service >/dev/null 2>&1; then
            service "${svc}" stop >/dev/null 2>&1 || true
        fi
    done
    # Without an init system the service may have been started by the init script as a
    # daemon; end only the packaged daemon, found by its pid file.
    local pidfile
    for pidfile in /run/prometheus/prometheus.pid /var/run/prometheus/prometheus.pid; do
        if [[ -f "${pidfile}" ]]; then
            kill "$(cat "${pidfile}")" 2>/dev/null || true
            rm -f "${pidfile}"
        fi
    done
}

if ! command -v prometheus >/dev/null 2>&1; then
    if [[ "$(id -u)" != "0" ]] && ! command -v sudo >/dev/null 2>&1; then
        log "prometheus is not on PATH and this user cannot apt-get install it"
        exit 1
    fi
    SUDO=""
    [[ "$(id -u)" == "0" ]] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    # Keep the package from starting its service at install time (policy-rc.d 101).
    policy=/usr/sbin/policy-rc.d
    made_policy=0
    if [[ ! -e "${policy}" ]]; then
        printf '#!/bin/sh\nexit 101\n' | ${SUDO} tee "${policy}" >/dev/null
        ${SUDO} chmod +x "${policy}"
        made_policy=1
    fi
    if ! apt-cache show prometheus >/dev/null 2>&1 \
        || [[ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n1)" ]]; then
        log "apt-get update"
        ${SUDO} apt-get -o DPkg::Lock::Timeout=600 update -q >&2
    fi
    log "apt-get install prometheus"
    ${SUDO} apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends prometheus >&2
    if [[ "${made_policy}" == "1" ]]; then ${SUDO} rm -f "${policy}"; fi
fi
stop_packaged_prometheus

bash "${here}/build.sh"
