#!/usr/bin/env bash
# Fetches what the CUDA build needs from Debian's contrib and non-free
# components (CUDA 11.8) into .tools-cuda/, without touching the machine's
# apt configuration: a private sources list and package lists, `apt-get
# download`, `dpkg -x`. Safe to run repeatedly; it downloads only what is
# missing.
#
# Building needs none of it: the CUDA build loads the driver, NVRTC and
# cuBLAS at run time (backend/cuda/internal/cudalib). What it is for:
#
#   scripts/cuda-deps.sh            libnvrtc11.2 and its builtins (the PTX
#                                   test compiles every kernel with them) and
#                                   libcuda1 (a driver without a device: the
#                                   cuda build's "no device" path); 20 MB
#   scripts/cuda-deps.sh --headers  also cuda.h, nvrtc.h, cublas_v2.h and the
#                                   headers they include, to check the shim's
#                                   declarations against them
#                                   (make check-cuda-abi)
#   scripts/cuda-deps.sh --cublas   also libcublas11 and libcublasLt11 (250 MB),
#                                   to check that the loader binds cuBLAS
#
# The headers come from nvidia-cuda-dev (a 774 MB package holding the whole
# toolkit's headers and static libraries): the .deb is streamed through
# `dpkg-deb --fsys-tarfile`, tar stops once it has the headers, and the .deb
# is deleted (CUDA_DEPS_KEEP_DEB=1 keeps it).
#
# Layout: .tools-cuda/lib/ (libcuda.so.1, libnvrtc.so.11.2,
# libnvrtc-builtins.so.11.8, ...), .tools-cuda/include/.
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
headers=0
for a in "$@"; do
	case $a in
	--cublas) want+=(libcublas11 libcublaslt11) ;;
	--headers) headers=1 ;;
	*)
		echo "cuda-deps: unknown option $a (have --headers, --cublas)" >&2
		exit 2
		;;
	esac
done
# The headers the ABI check includes, directly or not.
hdrs=(cuda.h nvrtc.h cublas_v2.h cublas_api.h driver_types.h library_types.h vector_types.h cuComplex.h
	cuda_fp16.h cuda_fp16.hpp cuda_bf16.h cuda_bf16.hpp crt/host_defines.h)

have_all() {
	if [ $headers = 1 ]; then
		for h in "${hdrs[@]}"; do
			[ -f "$root/include/$h" ] || return 1
		done
	fi
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
	if [ $headers = 1 ] && [ ! -f "$root/include/crt/host_defines.h" ]; then
		apt-get "${apt_opts[@]}" download nvidia-cuda-dev >/dev/null
		deb=$(ls nvidia-cuda-dev_*.deb)
		members=()
		for h in "${hdrs[@]}"; do
			members+=("./usr/include/$h")
		done
		# tar stops reading once it has them all (dpkg-deb then dies of
		# SIGPIPE, which is not an error here).
		rm -rf "$root/x-include"
		mkdir -p "$root/x-include"
		(dpkg-deb --fsys-tarfile "$deb" 2>/dev/null || true) | tar -x -C "$root/x-include" --occurrence=1 "${members[@]}"
		for h in "${hdrs[@]}"; do
			[ -f "$root/x-include/usr/include/$h" ] || { echo "cuda-deps: $h not in $deb" >&2; exit 1; }
		done
		cp -r "$root/x-include/usr/include/." "$root/include/"
		rm -rf "$root/x-include"
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
