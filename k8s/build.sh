#!/usr/bin/env bash
# Build the local control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, etcd, kwok, kwokctl) from Go modules, once per version,
# into ~/.cache/deploysim/k8s/<k8s-version>/bin. Prints the bin dir on stdout.
#
# Idempotent: when every binary exists and the stamp file says the build finished,
# it exits at once. Binaries are built into a temp dir and moved into place, so an
# interrupted build never looks complete.
#
# The wrapper modules live beside this script: kube/, etcd/, kwok/ (go.mod + go.sum).
set -euo pipefail

K8S_VERSION="v1.35.4"
ETCD_VERSION="v3.6.16"
KWOK_VERSION="v0.8.0"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${DEPLOYSIM_K8S_CACHE:-${HOME}/.cache/deploysim/k8s}"
dest="${cache_root}/${K8S_VERSION}"
bin="${dest}/bin"
stamp="${dest}/.build-complete"
binaries=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok kwokctl)
want_stamp="k8s=${K8S_VERSION} etcd=${ETCD_VERSION} kwok=${KWOK_VERSION}"

complete() {
    [[ -f "${stamp}" ]] || return 1
    [[ "$(head -n1 "${stamp}")" == "${want_stamp}" ]] || return 1
    local b
    for b in "${binaries[@]}"; do
        [[ -x "${bin}/${b}" ]] || return 1
    done
}

if complete; then
    echo "${bin}"
    exit 0
fi

if ! command -v go >/dev/null 2>&1; then
    echo "k8s/build.sh: 'go' is not on PATH; install Go >= 1.26 first" >&2
    exit 1
fi

mkdir -p "${cache_root}"
# One build at a time: a second caller waits for the first and then finds it done.
exec 9>"${cache_root}/.build.lock"
flock 9
if complete; then
    echo "${bin}"
    exit 0
fi

start=$(date +%s)
tmp="$(mktemp -d "${cache_root}/.build-${K8S_VERSION}.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT
mkdir -p "${tmp}/bin"

export CGO_ENABLED=0
# readonly: go.mod and go.sum are complete and committed; a build never rewrites them.
export GOFLAGS="-mod=readonly -trimpath -buildvcs=false"
log() { echo "k8s/build.sh: $*" >&2; }

minor="${K8S_VERSION#v1.}"
minor="${minor%%.*}"
kube_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${K8S_VERSION}"
kube_ldflags+=" -X k8s.io/component-base/version.gitMajor=1"
kube_ldflags+=" -X k8s.io/component-base/version.gitMinor=${minor}"
kube_ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
kube_ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=${K8S_VERSION}"
kube_ldflags+=" -X k8s.io/client-go/pkg/version.gitMajor=1"
kube_ldflags+=" -X k8s.io/client-go/pkg/version.gitMinor=${minor}"

log "downloading modules"
(cd "${here}/kube" && go mod download)
(cd "${here}/etcd" && go mod download)
(cd "${here}/kwok" && go mod download)

log "building etcd ${ETCD_VERSION}"
(cd "${here}/etcd" && go build -ldflags "-s -w" -o "${tmp}/bin/etcd" go.etcd.io/etcd/server/v3)

log "building kwok, kwokctl ${KWOK_VERSION}"
kwok_ldflags="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}"
kwok_ldflags+=" -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${K8S_VERSION#v}"
(cd "${here}/kwok" && go build -ldflags "${kwok_ldflags}" -o "${tmp}/bin/" \
    sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl)

# One invocation for all four: shared packages compile once and links overlap.
log "building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl ${K8S_VERSION}"
(cd "${here}/kube" && go build -ldflags "${kube_ldflags}" -o "${tmp}/bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)

"${tmp}/bin/kube-apiserver" --version >&2
"${tmp}/bin/etcd" --version | head -n1 >&2
"${tmp}/bin/kwokctl" --version >&2

# Move into place: replace any half-finished bin dir, then write the stamp last.
mkdir -p "${dest}"
rm -f "${stamp}"
rm -rf "${dest}/bin.old"
[[ -d "${bin}" ]] && mv "${bin}" "${dest}/bin.old"
mv "${tmp}/bin" "${bin}"
rm -rf "${dest}/bin.old"
{
    echo "${want_stamp}"
    echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(( $(date +%s) - start ))s with $(go version)"
} > "${stamp}"
log "done in $(( $(date +%s) - start ))s"
echo "${bin}"
