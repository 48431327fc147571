#!/usr/bin/env bash
# Development only (CI never runs it): makes test/fixtures/vad/speech16k.npy, the real speech the
# Silero VAD integration test feeds: Debian's espeak-ng speaking two phrases with pauses between
# them, resampled by sox to 16 kHz mono, stored as int16 samples (one 1-D .npy, about 150 KB).
# Needs: apt-get install espeak-ng sox python3-numpy
set -euo pipefail
out="$(cd "$(dirname "$0")/.." && pwd)/test/fixtures/vad/speech16k.npy"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
i=0
for phrase in "Quantization keeps the model small." "Is the voice still detected?"; do
  espeak-ng -v en -s 150 -w "$tmp/p$i.wav" "$phrase"
  sox "$tmp/p$i.wav" -r 16000 -c 1 -b 16 "$tmp/q$i.wav" vol 0.8
  i=$((i + 1))
done
# 0.6 s of silence before, between and after the phrases
sox -n -r 16000 -c 1 -b 16 "$tmp/sil.wav" trim 0 0.6
sox "$tmp/sil.wav" "$tmp/q0.wav" "$tmp/sil.wav" "$tmp/q1.wav" "$tmp/sil.wav" -t raw -e signed -b 16 -r 16000 -c 1 "$tmp/all.raw"
python3 - "$tmp/all.raw" "$out" <<'PY'
import sys, numpy as np
a = np.fromfile(sys.argv[1], dtype='<i2')
np.save(sys.argv[2], a)
print(sys.argv[2], a.shape, a.dtype, f'{a.size / 16000:.2f} s')
PY
