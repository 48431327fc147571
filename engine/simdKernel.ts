/**
 * The engine's WebAssembly SIMD loops (calibration/binning.wat, analysis/codeDetail.wat) are
 * instantiated the same way: lazily, once per thread (each statistics worker has its own), from the
 * base64 bytes `npm run wasm` writes; null where the runtime's WebAssembly lacks SIMD, and the
 * caller keeps its JavaScript loop.
 */
export function simdKernel<E, K>(base64: string, make: (exports: E) => K): () => K | null {
  let kernel: K | null | undefined;
  return () => {
    if (kernel !== undefined) return kernel;
    const bytes = Buffer.from(base64, 'base64');
    kernel = WebAssembly.validate(bytes) ? make(new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as unknown as E) : null;
    return kernel;
  };
}
