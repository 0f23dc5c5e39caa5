#!/usr/bin/env bash
# Fetches what the CUDA build needs from Debian's contrib and non-free
# components (CUDA 11.8) into .tools-cuda/, without touching the machine's
# apt configuration: a private sources list and package lists, `apt-get
# download`, `dpkg -x`. Safe to run repeatedly; it downloads only what is
# missing.
#
#   scripts/cuda-deps.sh          cuda.h (the headers cgo needs), libcuda.so
#                                 (to link against), libnvrtc (the PTX test)
#   scripts/cuda-deps.sh --cublas also libcublas11 and libcublasLt11 (250 MB;
#                                 not needed to build: cuBLAS is found at run
#                                 time, see backend/cuda/internal/cudalib)
#
# Only cuda.h is kept from nvidia-cuda-dev (a 774 MB package holding the whole
# toolkit's headers and static libraries): the .deb is streamed through
# `dpkg-deb --fsys-tarfile` and deleted. Set CUDA_DEPS_KEEP_DEB=1 to keep it.
#
# Layout: .tools-cuda/include/cuda.h, .tools-cuda/lib/ (libcuda.so,
# libcuda.so.1, libnvrtc.so.11.2, libnvrtc-builtins.so.11.8, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD/.tools-cuda
apt_dir=$root/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$root/debs" "$root/include" "$root/lib" "$root/x"

cat >"$apt_dir/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm contrib non-free
EOF
apt_opts=(-q -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o Debug::NoLocking=1)
[ "$(id -u)" = 0 ] && apt_opts+=(-o APT::Sandbox::User=root)

want=(libcuda1 libnvidia-ptxjitcompiler1 libnvrtc11.2 libnvrtc-builtins11.8)
if [ "${1:-}" = "--cublas" ]; then
	want+=(libcublas11 libcublaslt11)
fi

have_all() {
	[ -f "$root/include/cuda.h" ] || return 1
	for p in "${want[@]}"; do
		[ -f "$root/x/.$p" ] || return 1
	done
}
if have_all; then
	exit 0
fi

t0=$(date +%s)
if [ ! -f "$apt_dir/lists/.updated" ]; then
	apt-get "${apt_opts[@]}" update >/dev/null
	touch "$apt_dir/lists/.updated"
fi

(
	cd "$root/debs"
	missing=()
	for p in "${want[@]}"; do
		[ -f "$root/x/.$p" ] || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		apt-get "${apt_opts[@]}" download "${missing[@]}" >/dev/null
		for p in "${missing[@]}"; do
			deb=$(ls "${p}"_*.deb)
			dpkg -x "$deb" "$root/x"
			touch "$root/x/.$p"
			rm -f "$deb"
		done
	fi
	if [ ! -f "$root/include/cuda.h" ]; then
		apt-get "${apt_opts[@]}" download nvidia-cuda-dev >/dev/null
		deb=$(ls nvidia-cuda-dev_*.deb)
		# cuda.h is the only header the build includes (gorgonia.org/cu);
		# tar stops reading once it has it (dpkg-deb then dies of SIGPIPE).
		(dpkg-deb --fsys-tarfile "$deb" 2>/dev/null || true) | tar -x -O --occurrence=1 ./usr/include/cuda.h >"$root/include/cuda.h.tmp"
		grep -q cuDriverGetVersion "$root/include/cuda.h.tmp" || { echo "cuda-deps: no cuda.h in $deb" >&2; exit 1; }
		mv "$root/include/cuda.h.tmp" "$root/include/cuda.h"
		[ "${CUDA_DEPS_KEEP_DEB:-}" = 1 ] || rm -f "$deb"
	fi
)

# One folder of libraries: the driver API library to link against
# (libcuda.so -> libcuda.so.1) and the run-time libraries the tests load.
for f in "$root"/x/usr/lib/x86_64-linux-gnu/*.so* "$root"/x/usr/lib/x86_64-linux-gnu/nvidia/current/*.so*; do
	[ -e "$f" ] || continue
	ln -sfr "$f" "$root/lib/$(basename "$f")"
done
if [ ! -e "$root/lib/libcuda.so.1" ]; then
	real=$(ls "$root"/x/usr/lib/x86_64-linux-gnu/nvidia/current/libcuda.so.* 2>/dev/null | head -1 || true)
	[ -n "$real" ] || real=$(ls "$root"/x/usr/lib/x86_64-linux-gnu/libcuda.so.* | head -1)
	ln -sfr "$real" "$root/lib/libcuda.so.1"
fi
ln -sfr "$root/lib/libcuda.so.1" "$root/lib/libcuda.so"
echo "cuda-deps: ready in $(($(date +%s) - t0)) s ($(du -sh "$root" | cut -f1) in .tools-cuda)"
