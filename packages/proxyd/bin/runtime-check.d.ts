// Types of runtime-check.js (plain JavaScript so that it runs on any Node.js), for the tests that use it.
export declare const REQUIRED: string;
export declare function socketTransferSupported(version?: string): boolean;
export declare function requireSupportedNode(what?: string): void;
