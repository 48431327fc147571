;; The two loops of a calibration pass that touch every activation value (histogram.ts): the
;; min/max scan and the binning into TensorRT's |x| histogram. In JavaScript they cost 2-6 and
;; 8-16 ns per value on the PP-OCRv4 recogniser's 550 million; here 4 values move per instruction.
;;
;; Assembled by `npm run wasm` (scripts/wasm.mjs) into binningWasm.ts; a unit test checks that the
;; two agree. Every result equals the JavaScript loops' exactly (a test compares them): the bin of
;; v is trunc(min(|v| / w, L - 1)) computed in double precision, as JavaScript computes it.
;;
;; Memory, laid out by binningKernel.ts: the values at $p (f32), four interleaved copies of the
;; histogram at $h (i32 counts, each copy 2L bins: [0, L) for v >= 0, [L, 2L) for v < 0).
(module
  (memory (export "memory") 1)

  ;; Running minimum and maximum over the scan calls of one batch (set to +-inf before the first),
  ;; and the sum of v - v: 0 while every value is finite, NaN once a NaN or an infinity was seen.
  (global $min (export "min") (mut f32) (f32.const inf))
  (global $max (export "max") (mut f32) (f32.const -inf))
  (global $bad (export "bad") (mut f32) (f32.const 0))

  ;; Min and max of the n values at $p. pmin(m, v) = v < m ? v : m, so a NaN never replaces them,
  ;; as in JavaScript's loop.
  (func (export "scan") (param $p i32) (param $n i32)
    (local $end i32) (local $v v128) (local $lo v128) (local $hi v128) (local $nf v128) (local $s f32)
    (local.set $lo (f32x4.splat (global.get $min)))
    (local.set $hi (f32x4.splat (global.get $max)))
    (local.set $nf (f32x4.splat (f32.const 0)))
    (local.set $end (i32.add (local.get $p) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $v (v128.load (local.get $p)))
        (local.set $lo (f32x4.pmin (local.get $lo) (local.get $v)))
        (local.set $hi (f32x4.pmax (local.get $hi) (local.get $v)))
        (local.set $nf (f32x4.add (local.get $nf) (f32x4.sub (local.get $v) (local.get $v))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $next)))
    (global.set $min
      (f32.min
        (f32.min (f32x4.extract_lane 0 (local.get $lo)) (f32x4.extract_lane 1 (local.get $lo)))
        (f32.min (f32x4.extract_lane 2 (local.get $lo)) (f32x4.extract_lane 3 (local.get $lo)))))
    (global.set $max
      (f32.max
        (f32.max (f32x4.extract_lane 0 (local.get $hi)) (f32x4.extract_lane 1 (local.get $hi)))
        (f32.max (f32x4.extract_lane 2 (local.get $hi)) (f32x4.extract_lane 3 (local.get $hi)))))
    (global.set $bad
      (f32.add (global.get $bad)
        (f32.add
          (f32.add (f32x4.extract_lane 0 (local.get $nf)) (f32x4.extract_lane 1 (local.get $nf)))
          (f32.add (f32x4.extract_lane 2 (local.get $nf)) (f32x4.extract_lane 3 (local.get $nf))))))
    ;; the last n mod 4 values
    (local.set $end (i32.add (local.get $end) (i32.shl (i32.and (local.get $n) (i32.const 3)) (i32.const 2))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $s (f32.load (local.get $p)))
        (if (f32.lt (local.get $s) (global.get $min)) (then (global.set $min (local.get $s))))
        (if (f32.gt (local.get $s) (global.get $max)) (then (global.set $max (local.get $s))))
        (global.set $bad (f32.add (global.get $bad) (f32.sub (local.get $s) (local.get $s))))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $next))))

  ;; Count the n FINITE values at $p into the four copies at $h (value i into copy i mod 4: a
  ;; counter bumped by neighbouring values, which often share a bin, would be one long chain
  ;; through memory). Bin width $w, L bins per half.
  (func (export "bin") (param $p i32) (param $n i32) (param $h i32) (param $L i32) (param $w f64)
    (local $end i32) (local $v v128) (local $a v128) (local $idx v128) (local $k i32)
    (local $W v128) (local $last v128) (local $negOffset v128) (local $copyOffset v128)
    (local $s f32) (local $q f64)
    (local.set $W (f64x2.splat (local.get $w)))
    (local.set $last (f64x2.splat (f64.convert_i32_u (i32.sub (local.get $L) (i32.const 1)))))
    (local.set $negOffset (i32x4.splat (local.get $L)))
    ;; copy c starts at bin 2cL
    (local.set $copyOffset
      (i32x4.mul (i32x4.splat (i32.shl (local.get $L) (i32.const 1))) (v128.const i32x4 0 1 2 3)))
    (local.set $end (i32.add (local.get $p) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $v (v128.load (local.get $p)))
        (local.set $a (f32x4.abs (local.get $v)))
        ;; bins of values 0-1 and 2-3: |v| / w in double, clamped to the last bin, truncated
        (local.set $idx
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            (i32x4.trunc_sat_f64x2_s_zero
              (f64x2.pmin (f64x2.div (f64x2.promote_low_f32x4 (local.get $a)) (local.get $W)) (local.get $last)))
            (i32x4.trunc_sat_f64x2_s_zero
              (f64x2.pmin
                (f64x2.div
                  (f64x2.promote_low_f32x4
                    (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $a) (local.get $a)))
                  (local.get $W))
                (local.get $last)))))
        ;; + L for a negative value, + the copy's start; to a byte address
        (local.set $idx
          (i32x4.add
            (i32x4.add (local.get $idx) (local.get $copyOffset))
            (v128.and (f32x4.lt (local.get $v) (v128.const f32x4 0 0 0 0)) (local.get $negOffset))))
        (local.set $idx (i32x4.add (i32x4.shl (local.get $idx) (i32.const 2)) (i32x4.splat (local.get $h))))
        (local.set $k (i32x4.extract_lane 0 (local.get $idx)))
        (i32.store (local.get $k) (i32.add (i32.load (local.get $k)) (i32.const 1)))
        (local.set $k (i32x4.extract_lane 1 (local.get $idx)))
        (i32.store (local.get $k) (i32.add (i32.load (local.get $k)) (i32.const 1)))
        (local.set $k (i32x4.extract_lane 2 (local.get $idx)))
        (i32.store (local.get $k) (i32.add (i32.load (local.get $k)) (i32.const 1)))
        (local.set $k (i32x4.extract_lane 3 (local.get $idx)))
        (i32.store (local.get $k) (i32.add (i32.load (local.get $k)) (i32.const 1)))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $next)))
    ;; the last n mod 4 values, into copy 0
    (local.set $end (i32.add (local.get $end) (i32.shl (i32.and (local.get $n) (i32.const 3)) (i32.const 2))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $s (f32.load (local.get $p)))
        (local.set $q (f64.div (f64.abs (f64.promote_f32 (local.get $s))) (local.get $w)))
        (local.set $q (f64.min (local.get $q) (f64x2.extract_lane 0 (local.get $last))))
        (local.set $k
          (i32.add (local.get $h)
            (i32.shl
              (i32.add (i32.trunc_f64_s (local.get $q))
                (select (local.get $L) (i32.const 0) (f32.lt (local.get $s) (f32.const 0))))
              (i32.const 2))))
        (i32.store (local.get $k) (i32.add (i32.load (local.get $k)) (i32.const 1)))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $next))))
)
