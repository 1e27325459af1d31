#!/usr/bin/env bash
#  tests/deploy/base-images.sh ENGINE - makes sure the images the Dockerfile
#  starts from, debian:bookworm and debian:bookworm-slim, exist locally.
#
#  An image that is already there is kept (nothing is rebuilt).  A missing
#  one is pulled; where no registry can be reached, both are made here with
#  debootstrap (a minimal Debian 12 from the Debian mirror that apt uses,
#  DEBIAN_MIRROR to change it) and `ENGINE import`: bookworm is the minbase
#  system, bookworm-slim the same without documentation, manual pages,
#  locales and apt lists, with dpkg told to leave them out of later
#  installs, as the official slim image does.
set -euo pipefail
ENGINE=${1:-podman}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

log() { echo "# base-images: $*"; }

have() { "$ENGINE" image inspect "$1" > /dev/null 2>&1; }

missing=()
for tag in debian:bookworm debian:bookworm-slim; do
    if have "$tag"; then
        log "$tag is here"
    elif timeout 120 "$ENGINE" pull -q "docker.io/library/$tag" > /dev/null 2>&1; then
        log "$tag pulled"
    else
        missing+=("$tag")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

log "cannot pull ${missing[*]}: making them with debootstrap from $MIRROR"
if ! command -v debootstrap > /dev/null; then
    echo "base-images: debootstrap is missing (make deps-docker installs it)" >&2
    exit 1
fi
root=$(mktemp -d /var/tmp/bookstore-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
start=$SECONDS
debootstrap --variant=minbase bookworm "$root" "$MIRROR" > "$root.log" 2>&1 || {
    tail -n 20 "$root.log" >&2
    rm -f "$root.log"
    exit 1
}
rm -f "$root.log"
log "debootstrap took $((SECONDS - start)) s"

#  The sources of the official images: the release, its updates and the
#  security archive
rm -f "$root/etc/apt/sources.list"
cat > "$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
#  No package cache kept in image layers
cat > "$root/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
echo 'Acquire::GzipIndexes "true";' > "$root/etc/apt/apt.conf.d/docker-gzip-indexes"
printf 'APT::Install-Recommends "false";\n' > "$root/etc/apt/apt.conf.d/docker-no-recommends"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
       "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/tmp/*
: > "$root/etc/hostname"
: > "$root/etc/resolv.conf"

import() {
    local out
    if ! out=$(tar --numeric-owner -C "$root" -c . | "$ENGINE" import --change 'CMD ["bash"]' \
                   --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$1" 2>&1); then
        echo "$out" >&2
        exit 1
    fi
    log "$1 imported ($("$ENGINE" image inspect --format '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1 / 1e6}'))"
}
if ! have debian:bookworm; then
    import debian:bookworm
fi
if ! have debian:bookworm-slim; then
    cat > "$root/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
DPKG
    find "$root/usr/share/doc" -mindepth 1 -not -name copyright -type f -delete 2>/dev/null || true
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
    rm -rf "$root"/usr/share/man/* "$root"/usr/share/groff/* "$root"/usr/share/info/* \
           "$root"/usr/share/lintian/* "$root"/usr/share/linda/* "$root"/usr/share/locale/*
    import debian:bookworm-slim
fi
