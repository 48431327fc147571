// The part of the WebAssembly JavaScript API the engine uses (simdKernel.ts and the kernels it
// makes). Node has it all; TypeScript declares it only in its DOM library, which the engine must
// not see.
declare namespace WebAssembly {
  class Module {
    constructor(bytes: Uint8Array);
  }
  class Instance {
    constructor(module: Module, imports?: object);
    readonly exports: Record<string, unknown>;
  }
  class Memory {
    readonly buffer: ArrayBuffer;
    grow(pages: number): number;
  }
  class Global {
    value: number;
  }
  function validate(bytes: Uint8Array): boolean;
}
