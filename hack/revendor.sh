#!/usr/bin/env bash
# revendor.sh — rebuilds each vendored crate (vendor/libcontainer,
# vendor/libcgroups) from the published crate and its patch series in
# vendor/<crate>/patches (vendor/<crate>/RUNVZ.md).
#
#   hack/revendor.sh           replace each vendored copy's crate files with
#                              crate + patches (RUNVZ.md and patches/ are kept)
#   hack/revendor.sh --check   rebuild in a temporary directory and compare with
#                              each vendored copy; any difference is printed
#                              and the script exits 1
#
# Each crate comes through cargo (a scratch project's `cargo fetch`, or cargo's
# own cache when it is already there) and must match its sha256 in CRATES, the
# checksum the registry's index gives for that version (Cargo.lock's before the
# crate was vendored). To upgrade: change its version and sha256 there, run
# this script, and fix the patches it names as failing.
set -eu

# name version sha256, one vendored crate per line.
CRATES="
libcontainer 0.7.0 2c28770cf8fb3acca0d168a10f5d9f8333d304af0b2ff5654029822d222d19f0
libcgroups 0.7.0 d85e8f0bca12f0d04fdd8f14858022018cd1667b4f971d6b09058fe90323e19d
"
# Files the published crate has that the vendored copy leaves out (cargo's
# packaging record and the crate's own lock file: the workspace's lock rules).
CRATE_DROP=".cargo_vcs_info.json Cargo.lock"
# runvz's own files in a vendored copy, not part of the crate.
KEEP="RUNVZ.md patches"

die() { echo "revendor: error: $*" >&2; exit 1; }

check=0
case "${1:-}" in
    "") ;;
    --check) check=1 ;;
    -h | --help) sed -n '2,16s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (usage: hack/revendor.sh [--check])" ;;
esac
[ $# -le 1 ] || die "too many arguments (usage: hack/revendor.sh [--check])"

root=$(cd "$(dirname "$0")/.." && pwd)
for tool in cargo sha256sum tar patch diff; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not installed"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/revendor.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Rebuilds (or checks) vendor/NAME from crate NAME VERSION, whose .crate file
# must have the sha256 SHA256, and the patches in vendor/NAME/patches.
revendor_one() { # NAME VERSION SHA256
    local CRATE_NAME=$1 CRATE_VERSION=$2 CRATE_SHA256=$3
    local vendor=$root/vendor/$1 crate sum tree n p entry excludes k f
    local patches=$vendor/patches
    [ -d "$patches" ] || die "no patch directory at $patches"
    rm -rf "$work/fetch" "$work/unpack"

    # 1. The crate file: cargo's cache, or a scratch project's `cargo fetch`.
    cargo_home=${CARGO_HOME:-$HOME/.cargo}
    find_crate() {
        find "$cargo_home/registry/cache" -name "$CRATE_NAME-$CRATE_VERSION.crate" 2>/dev/null | head -n 1
    }
    crate=$(find_crate)
    if [ -z "$crate" ]; then
        mkdir -p "$work/fetch/src"
        printf '[package]\nname = "revendor-fetch"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\n%s = "=%s"\n\n[workspace]\n' \
            "$CRATE_NAME" "$CRATE_VERSION" >"$work/fetch/Cargo.toml"
        : >"$work/fetch/src/lib.rs"
        # The workspace's lock pins the crate's dependencies to versions cargo
        # already has, so the fetch downloads little more than the crate itself.
        [ -f "$root/Cargo.lock" ] && cp "$root/Cargo.lock" "$work/fetch/Cargo.lock"
        if ! cargo fetch -q --manifest-path "$work/fetch/Cargo.toml" >"$work/fetch.log" 2>&1; then
            die "cargo could not fetch $CRATE_NAME $CRATE_VERSION (network or registry unreachable?): $(grep -m1 -i error "$work/fetch.log" || tail -n 1 "$work/fetch.log")"
        fi
        crate=$(find_crate)
        [ -n "$crate" ] || die "cargo fetched $CRATE_NAME $CRATE_VERSION but its .crate file is not under $cargo_home/registry/cache"
    fi

    # 2. Its checksum.
    sum=$(sha256sum "$crate" | cut -d' ' -f1)
    [ "$sum" = "$CRATE_SHA256" ] ||
        die "checksum mismatch for $crate: expected $CRATE_SHA256, got $sum"

    # 3. Unpack, drop what the vendored copy leaves out, apply the series in order.
    mkdir "$work/unpack"
    tar -xzf "$crate" -C "$work/unpack" || die "cannot unpack $crate"
    tree=$work/unpack/$CRATE_NAME-$CRATE_VERSION
    [ -d "$tree" ] || die "$crate does not hold $CRATE_NAME-$CRATE_VERSION/"
    for f in $CRATE_DROP; do rm -f "$tree/$f"; done
    n=0
    for p in "$patches"/*.patch; do
        [ -e "$p" ] || die "no patches in $patches"
        if ! (cd "$tree" && patch -p1 --batch --forward --fuzz=0 --no-backup-if-mismatch -s \
            <"$p" >"$work/patch.log" 2>&1); then
            echo "revendor: error: patch $(basename "$p") does not apply to $CRATE_NAME $CRATE_VERSION (after $n patches)" >&2
            sed 's/^/    /' "$work/patch.log" >&2
            exit 1
        fi
        n=$((n + 1))
    done
    find "$tree" -name '*.rej' | grep -q . && die "patching left .rej files behind"

    # 4. Compare with, or replace, the vendored copy.
    excludes=""
    for k in $KEEP; do excludes="$excludes -x $k"; done
    if [ "$check" = 1 ]; then
        # shellcheck disable=SC2086 # word splitting of $excludes is intended
        if ! diff -ru $excludes "$vendor" "$tree" >"$work/check.diff"; then
            sed -e "s|$vendor|vendor/$CRATE_NAME|g" -e "s|$tree|$CRATE_NAME-$CRATE_VERSION+patches|g" "$work/check.diff"
            echo "revendor: error: vendor/$CRATE_NAME differs from $CRATE_NAME $CRATE_VERSION + $n patches (diff above)" >&2
            exit 1
        fi
        echo "revendor: vendor/$CRATE_NAME is $CRATE_NAME $CRATE_VERSION + $n patches"
        return 0
    fi

    for entry in "$vendor"/* "$vendor"/.[!.]*; do
        [ -e "$entry" ] || continue
        case " $KEEP " in *" $(basename "$entry") "*) continue ;; esac
        rm -rf "$entry"
    done
    cp -a "$tree"/. "$vendor"/
    echo "revendor: vendor/$CRATE_NAME is now $CRATE_NAME $CRATE_VERSION + $n patches"
}

while read -r name version sha256; do
    [ -n "$name" ] || continue
    revendor_one "$name" "$version" "$sha256"
done <<<"$CRATES"
