/** The part of madge's API that scripts/check-deps.ts uses (madge ships no types). */
declare module "madge" {
  interface MadgeResult {
    /** File → the files it imports, paths relative to `baseDir`. */
    obj(): Record<string, string[]>;
    /** Each import cycle as the files on it. */
    circular(): string[][];
  }
  interface MadgeConfig {
    baseDir?: string;
    fileExtensions?: string[];
    tsConfig?: string;
    detectiveOptions?: Record<string, unknown>;
  }
  export default function madge(path: string | string[], config?: MadgeConfig): Promise<MadgeResult>;
}
