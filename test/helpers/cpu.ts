/**
 * Some expected numbers depend on the CPU onnxruntime's int8 kernels run on. On x86 without VNNI
 * (AVX2), its QGEMM kernel sums u8 x s8 product pairs with int16 saturation (VPMADDUBSW), which
 * onnxruntime documents and which wrecks some models: the bundled demo's int8 top-1 falls from
 * 98% to 48% there. Expectations measured where the kernels are exact are skipped on such a CPU,
 * with this reason; the saturation itself is checked bit-exactly on it (conformance-ort.test.ts)
 * and the report's integer figures against onnxruntime's own run of the written file.
 */
import { platform, u8s8Hazard } from '../../engine/analysis/platform';

const host = platform();

/** The skip reason on a CPU whose int8 kernels saturate u8 x s8 pairs, else false. */
export const SATURATING_INT8: string | false = u8s8Hazard(host)
  ? `${host.cpu} has no VNNI: onnxruntime's u8 x s8 int8 kernels saturate int16 pairs here, and these expectations hold where they do not`
  : false;
