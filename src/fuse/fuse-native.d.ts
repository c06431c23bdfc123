// Minimal typings for fuse-native 2.2.6 (it ships none). Only src/fuse/ may import the binding.
declare module 'fuse-native' {
  type Cb = (...args: any[]) => void;
  export interface FuseOptions {
    force?: boolean;
    mkdir?: boolean;
    debug?: boolean;
    allowOther?: boolean;
    autoUnmount?: boolean;
    defaultPermissions?: boolean;
    maxRead?: number;
    fsname?: string;
    subtype?: string;
    kernelCache?: boolean;
    autoCache?: boolean;
    entryTimeout?: number;
    attrTimeout?: number;
    acAttrTimeout?: number;
    uid?: number;
    gid?: number;
    timeout?: number | false | Record<string, number | false>;
  }
  export default class Fuse {
    constructor(mnt: string, ops: Record<string, Cb>, opts?: FuseOptions);
    mount(cb: (err: Error | null) => void): void;
    /** libfuse workers' locals allocated so far (vendor/fuse-native patch 6). */
    readonly workerLocals: number;
    unmount(cb: (err: Error | null) => void): void;
    /** The kernel forgets these paths' attributes and pages; `known`: how many it had (vendor/fuse-native patch 9). */
    invalidatePaths(paths: readonly string[], cb: (err: Error | null, known: number) => void): void;
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
    static ENOENT: number;
    static isConfigured(cb: (err: Error | null, configured: boolean) => void): void;
  }
}
