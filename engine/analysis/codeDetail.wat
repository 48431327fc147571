;; The code-level detail's loop over every element of a layer's output (layerCompare.ts,
;; addDetail): the integer run's error against the float output in output LSB, binned, and where
;; the simulated and integer codes differ, by how much. In JavaScript it cost 7-17 ns per element,
;; up to 4e7 elements per analysis (detail.ts's budget); here 4 elements move per iteration, ~1.6 ns
;; per element with the copies in.
;;
;; Assembled by `npm run wasm` (scripts/wasm.mjs) into codeDetailWasm.ts. Every count equals the
;; JavaScript loop's exactly (test/unit/code-detail-kernel.test.ts compares them): the error is
;; ((ci - zi) * si - x) * inv in double precision, rounded half up as floor(e + 0.5) corrected
;; where that addition rounds up, as the JavaScript computes it; WebAssembly never fuses the
;; multiply and the subtraction.
;;
;; Memory, laid out by codeDetailKernel.ts: x (f32) at $x, the simulated codes (i32) at $cs, the
;; integer codes (i32) at $ci, the bins (i32) at $h: 33 bins for -16..16 LSB (the ends holding
;; everything beyond), then a 34th where NaN errors go, which the caller ignores (JavaScript's
;; loop indexed its histogram with NaN: no bin).
(module
  (memory (export "memory") 1)

  ;; Over the calls of one addDetail: elements whose codes differ, and the largest difference.
  (global $mismatch (export "mismatch") (mut i32) (i32.const 0))
  (global $maxLsb (export "maxLsb") (mut i32) (i32.const 0))

  ;; n must be a multiple of 4 (the caller does the rest in JavaScript).
  (func (export "detail")
    (param $x i32) (param $cs i32) (param $ci i32) (param $n i32) (param $h i32)
    (param $zs i32) (param $zi i32) (param $si f64) (param $inv f64)
    (local $i i32) (local $zero i32) (local $b i32) (local $p i32)
    (local $qs v128) (local $qi v128) (local $dq v128) (local $vx v128)
    (local $mm v128) (local $mx v128) (local $idx v128)
    (local $lo v128) (local $hi v128) (local $vLo v128) (local $vHi v128)
    (local $si2 v128) (local $inv2 v128) (local $half v128) (local $one v128) (local $m16 v128) (local $p16 v128)
    (local.set $si2 (f64x2.splat (local.get $si)))
    (local.set $inv2 (f64x2.splat (local.get $inv)))
    (local.set $half (f64x2.splat (f64.const 0.5)))
    (local.set $one (f64x2.splat (f64.const 1)))
    (local.set $m16 (f64x2.splat (f64.const -16)))
    (local.set $p16 (f64x2.splat (f64.const 16)))
    (local.set $mm (v128.const i32x4 0 0 0 0))
    (local.set $mx (i32x4.splat (global.get $maxLsb)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $b (i32.shl (local.get $i) (i32.const 2)))
        (local.set $qs (v128.load (i32.add (local.get $cs) (local.get $b))))
        ;; the integer code relative to its zero point, then on the simulated grid's zero point
        (local.set $dq (i32x4.sub (v128.load (i32.add (local.get $ci) (local.get $b))) (i32x4.splat (local.get $zi))))
        (local.set $qi (i32x4.add (local.get $dq) (i32x4.splat (local.get $zs))))
        ;; differing codes: the lane mask is -1, so subtracting it counts; equal ones add |0| to the max
        (local.set $mm (i32x4.sub (local.get $mm) (i32x4.ne (local.get $qs) (local.get $qi))))
        (local.set $mx (i32x4.max_s (local.get $mx) (i32x4.abs (i32x4.sub (local.get $qs) (local.get $qi)))))
        (local.set $vx (v128.load (i32.add (local.get $x) (local.get $b))))
        ;; the error in LSB of lanes 0-1 and 2-3, in double precision
        (local.set $vLo (f64x2.mul (f64x2.sub (f64x2.mul (f64x2.convert_low_i32x4_s (local.get $dq)) (local.get $si2))
          (f64x2.promote_low_f32x4 (local.get $vx))) (local.get $inv2)))
        (local.set $vHi (f64x2.mul (f64x2.sub (f64x2.mul
          (f64x2.convert_low_i32x4_s (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $dq) (local.get $dq)))
          (local.get $si2))
          (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $vx) (local.get $vx))))
          (local.get $inv2)))
        ;; Nearly every element of an early layer lies within half an LSB (a NaN does not): counted
        ;; in a register, without rounding.
        (if (i64x2.all_true (v128.and
              (f64x2.lt (f64x2.abs (local.get $vLo)) (local.get $half))
              (f64x2.lt (f64x2.abs (local.get $vHi)) (local.get $half))))
          (then (local.set $zero (i32.add (local.get $zero) (i32.const 4))))
          (else
            ;; rounded half up and clamped to [-16, 16]: e = floor(v + 0.5), one less where v + 0.5
            ;; rounded up to the next integer (v = 0.49999999999999994, where it gives 0 as above);
            ;; pmax/pmin make a NaN a bound, and its lane goes to the NaN bin
            (local.set $lo (f64x2.floor (f64x2.add (local.get $vLo) (local.get $half))))
            (local.set $lo
              (f64x2.pmin
                (f64x2.pmax
                  (v128.bitselect
                    (f64x2.sub (local.get $lo) (local.get $one))
                    (local.get $lo)
                    (f64x2.gt (f64x2.sub (local.get $lo) (local.get $half)) (local.get $vLo)))
                  (local.get $m16))
                (local.get $p16)))
            (local.set $hi (f64x2.floor (f64x2.add (local.get $vHi) (local.get $half))))
            (local.set $hi
              (f64x2.pmin
                (f64x2.pmax
                  (v128.bitselect
                    (f64x2.sub (local.get $hi) (local.get $one))
                    (local.get $hi)
                    (f64x2.gt (f64x2.sub (local.get $hi) (local.get $half)) (local.get $vHi)))
                  (local.get $m16))
                (local.get $p16)))
            ;; bin indices 0..32 of the four lanes (each i32 at the low half of its double), 33 for NaN
            (local.set $idx
              (v128.bitselect
                (i32x4.splat (i32.const 33))
                (i32x4.add
                  (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
                    (i32x4.trunc_sat_f64x2_s_zero (local.get $lo))
                    (i32x4.trunc_sat_f64x2_s_zero (local.get $hi)))
                  (i32x4.splat (i32.const 16)))
                (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27
                  (f64x2.ne (local.get $vLo) (local.get $vLo))
                  (f64x2.ne (local.get $vHi) (local.get $vHi)))))
            (local.set $p (i32.add (local.get $h) (i32.shl (i32x4.extract_lane 0 (local.get $idx)) (i32.const 2))))
            (i32.store (local.get $p) (i32.add (i32.load (local.get $p)) (i32.const 1)))
            (local.set $p (i32.add (local.get $h) (i32.shl (i32x4.extract_lane 1 (local.get $idx)) (i32.const 2))))
            (i32.store (local.get $p) (i32.add (i32.load (local.get $p)) (i32.const 1)))
            (local.set $p (i32.add (local.get $h) (i32.shl (i32x4.extract_lane 2 (local.get $idx)) (i32.const 2))))
            (i32.store (local.get $p) (i32.add (i32.load (local.get $p)) (i32.const 1)))
            (local.set $p (i32.add (local.get $h) (i32.shl (i32x4.extract_lane 3 (local.get $idx)) (i32.const 2))))
            (i32.store (local.get $p) (i32.add (i32.load (local.get $p)) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $next)))
    (i32.store offset=64 (local.get $h) (i32.add (i32.load offset=64 (local.get $h)) (local.get $zero)))
    (global.set $mismatch
      (i32.add (global.get $mismatch)
        (i32.add
          (i32.add (i32x4.extract_lane 0 (local.get $mm)) (i32x4.extract_lane 1 (local.get $mm)))
          (i32.add (i32x4.extract_lane 2 (local.get $mm)) (i32x4.extract_lane 3 (local.get $mm))))))
    (global.set $maxLsb
      (call $max
        (call $max (i32x4.extract_lane 0 (local.get $mx)) (i32x4.extract_lane 1 (local.get $mx)))
        (call $max (i32x4.extract_lane 2 (local.get $mx)) (i32x4.extract_lane 3 (local.get $mx))))))

  (func $max (param $a i32) (param $b i32) (result i32)
    (select (local.get $a) (local.get $b) (i32.gt_s (local.get $a) (local.get $b)))))
