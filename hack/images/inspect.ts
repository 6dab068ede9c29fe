// What an image archive written by hack/images/build.sh holds: its config (user, entrypoint) and the
// files and bytes of the layers it adds over its base. Read with tar from the docker-archive itself,
// so it checks the very file the nodes' containerd imports.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const MAX_BUFFER = 256 * 1024 * 1024;

export interface ImageFacts {
  readonly user: string;
  readonly entrypoint: readonly string[];
  /** Paths (no leading slash) in the layers the image adds over its base. */
  readonly ownFiles: readonly string[];
  readonly ownBytes: number;
  readonly totalBytes: number;
}

interface ArchiveManifest {
  Config: string;
  Layers: string[];
}

async function tarOut(args: string[]): Promise<string> {
  return (await run('tar', args, { maxBuffer: MAX_BUFFER })).stdout;
}

async function manifestOf(archive: string): Promise<ArchiveManifest> {
  const [first] = JSON.parse(await tarOut(['-xOf', archive, 'manifest.json'])) as ArchiveManifest[];
  if (first === undefined) throw new Error(`${archive}: manifest.json names no image`);
  return first;
}

/** Byte size of each member of the archive, from `tar -tv`'s third column. */
async function memberSizes(archive: string): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  for (const line of (await tarOut(['-tvf', archive])).split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols.length >= 6) sizes.set(cols.slice(5).join(' '), Number(cols[2]));
  }
  return sizes;
}

async function layerFiles(archive: string, layer: string): Promise<string[]> {
  const { stdout } = await run('sh', ['-c', 'tar -xOf "$1" "$2" | tar -tf -', 'sh', archive, layer], { maxBuffer: MAX_BUFFER });
  return stdout.split('\n').filter(Boolean).map((p) => p.replace(/^\.?\//, ''));
}

export async function imageFacts(archive: string, baseArchive: string): Promise<ImageFacts> {
  const manifest = await manifestOf(archive);
  const base = new Set((await manifestOf(baseArchive)).Layers);
  const config = JSON.parse(await tarOut(['-xOf', archive, manifest.Config])) as { config?: { User?: string; Entrypoint?: string[] } };
  const sizes = await memberSizes(archive);
  const own = manifest.Layers.filter((l) => !base.has(l));
  const ownFiles = (await Promise.all(own.map((l) => layerFiles(archive, l)))).flat();
  const bytes = (layers: string[]): number => layers.reduce((sum, l) => sum + (sizes.get(l) ?? 0), 0);
  return {
    user: config.config?.User ?? '',
    entrypoint: config.config?.Entrypoint ?? [],
    ownFiles,
    ownBytes: bytes(own),
    totalBytes: bytes(manifest.Layers),
  };
}
