// Static checks of the Dockerfile and .dockerignore against package.json and the Deployment.
// There is no image build here; these catch the drift an image build would only reveal at run time.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { imageEnv, imageNodeFlags, shippedNodeFlags } from '../../../hack/bench/e2e/contestants.js';
import { describe, expect, it } from 'vitest';
import { controllerContainer, findObject, loadResources, manifestsDir, repoRoot } from './manifests.js';

interface Instruction {
  readonly keyword: string;
  readonly args: string;
  /** Index of the FROM that starts the stage holding this instruction. */
  readonly stage: number;
}

/** Dockerfile instructions with continuation lines joined and comments dropped. */
function parseDockerfile(text: string): Instruction[] {
  const joined = text
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const instructions: Instruction[] = [];
  let stage = -1;
  for (const line of joined.split('\n')) {
    const match = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (match?.[1] === undefined || match[2] === undefined) continue;
    const keyword = match[1].toUpperCase();
    if (keyword === 'FROM') stage++;
    instructions.push({ keyword, args: match[2].trim(), stage });
  }
  return instructions;
}

const dockerfile = parseDockerfile(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
const dockerignore = readFileSync(join(repoRoot, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));
const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  bin: Record<string, string>;
  engines: { node: string };
  devDependencies: Record<string, string>;
  scripts: Record<string, string>;
};
const lastStage = Math.max(...dockerfile.map((i) => i.stage));
const runtime = dockerfile.filter((i) => i.stage === lastStage);

function only(keyword: string, instructions = runtime): Instruction {
  const found = instructions.filter((i) => i.keyword === keyword);
  expect(found, keyword).toHaveLength(1);
  const [first] = found;
  if (first === undefined) throw new Error(`no ${keyword}`);
  return first;
}

function nodeImage(): string {
  const arg = dockerfile.find((i) => i.keyword === 'ARG' && i.args.startsWith('NODE_IMAGE='));
  return arg?.args.slice('NODE_IMAGE='.length) ?? '';
}

describe('the Dockerfile', () => {
  it('starts the bin that package.json declares, from /app', () => {
    const entrypoint = JSON.parse(only('ENTRYPOINT').args) as string[];
    expect(entrypoint).toEqual(['node', ...imageNodeFlags(), `/app/${pkg.bin['podcidr-allocator'] ?? ''}`]);
    expect(imageNodeFlags()).toEqual(['--max-semi-space-size=1']);
  });

  it('gives the benchmark the node flags a deployed replica runs with', () => {
    expect(shippedNodeFlags()).toEqual(['--max-semi-space-size=1', '--max-old-space-size=192']);
  });

  it('gives the benchmark the environment of the image, malloc settings included', () => {
    const declared = runtime.filter((i) => i.keyword === 'ENV').flatMap((i) => i.args.split(/\s+/));
    expect(Object.entries(imageEnv()).map(([k, v]) => `${k}=${v}`)).toEqual(declared);
    expect(imageEnv()).toMatchObject({ MALLOC_ARENA_MAX: '1', MALLOC_MMAP_THRESHOLD_: '32768' });
  });

  it('runs by default the subcommand the Deployment passes first', () => {
    const deployment = findObject<k8s.V1Deployment>(loadResources(join(manifestsDir, 'base')), 'Deployment', 'podcidr-allocator');
    const cmd = JSON.parse(only('CMD').args) as string[];
    expect(cmd).toEqual([controllerContainer(deployment).args?.[0]]);
  });

  it('copies the compiled tree that contains the bin into /app', () => {
    const bin = pkg.bin['podcidr-allocator'] ?? '';
    const copies = runtime.filter((i) => i.keyword === 'COPY' && i.args.startsWith('--from=build'));
    const targets = copies.map((c) => c.args.split(/\s+/).at(-1)?.replace(/^\.\//, '') ?? '');
    expect(targets.some((t) => bin.startsWith(`${t.replace(/\/$/, '')}/`))).toBe(true);
    expect(only('WORKDIR').args).toBe('/app');
  });

  it('runs as uid and gid 65532, the ones the Deployment asks for', () => {
    expect(only('USER').args).toBe('65532:65532');
  });

  it('ships the bundles without node_modules, and installs with no install scripts', () => {
    // The bundles hold every dependency, so the image needs no npm install of its own.
    expect(runtime.filter((i) => i.args.includes('node_modules') || i.args.includes('npm '))).toEqual([]);
    const copied = runtime.filter((i) => i.keyword === 'COPY' && i.args.startsWith('--from=build'));
    expect(copied.map((i) => i.args)).toEqual(['--from=build /src/dist/bundle ./dist/bundle']);
    expect(pkg.scripts.build).toContain('node hack/bundle.ts dist/bundle');
    const installs = dockerfile.filter((i) => i.keyword === 'RUN' && i.args.includes('npm ci'));
    expect(installs).toHaveLength(1);
    for (const install of installs) expect(install.args, install.args).toContain('--ignore-scripts');
    expect(pkg.devDependencies.node, 'the node package must stay a devDependency').toBeDefined();
  });

  it('builds and runs on one pinned Node release that package.json accepts', () => {
    const image = nodeImage();
    const version = /^node:(\d+)\.(\d+)\.(\d+)-[a-z]+-slim$/.exec(image);
    expect(version, image).not.toBeNull();
    const [major, minor] = [Number(version?.[1]), Number(version?.[2])];
    const engine = /^>=(\d+)\.(\d+)$/.exec(pkg.engines.node);
    expect(engine, pkg.engines.node).not.toBeNull();
    expect(major > Number(engine?.[1]) || (major === Number(engine?.[1]) && minor >= Number(engine?.[2]))).toBe(true);
    expect(pkg.devDependencies.node?.split('.')[0]).toBe(String(major));
    for (const from of dockerfile.filter((i) => i.keyword === 'FROM')) expect(from.args).toMatch(/^\$\{NODE_IMAGE\}( AS \w+)?$/);
  });

  it('builds with npm run build and compiles only the sources', () => {
    const build = dockerfile.filter((i) => i.keyword === 'RUN' && i.args.includes('npm run build'));
    expect(build).toHaveLength(1);
    // Of hack/, only the script that npm run build calls to bundle the program.
    const copies = dockerfile.filter((i) => i.keyword === 'COPY' && /^(test|hack|\.)[\s/]/.test(i.args));
    expect(copies.map((i) => i.args)).toEqual(['hack/bundle.ts ./hack/']);
    expect(dockerignore).toContain('!hack/bundle.ts');
  });
});

describe('the .dockerignore', () => {
  // An allow-list: everything is out but the "!" lines, so a new file never slips into the context.
  const allowed = dockerignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1));
  const inContext = (path: string): boolean => allowed.some((a) => a === path || path.startsWith(`${a}/`));

  it('starts by leaving everything out', () => {
    expect(dockerignore[0]).toBe('*');
  });

  it.each(['node_modules', 'dist', '.git', 'test', 'hack', 'coverage', 'charts', 'manifests', 'docs'])(
    'keeps %s out of the build context',
    (path) => {
      expect(inContext(path)).toBe(false);
    },
  );

  it('lets in exactly what the Dockerfile copies from the context', () => {
    const copied = dockerfile
      .filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from'))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    expect([...new Set(copied)].sort()).toEqual([...allowed].sort());
    expect(copied).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'src']));
  });
});
