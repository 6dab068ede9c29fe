// The layers, enforced by `npm run lint`: cli → term → controller → allocator → cidr, with kube/ and
// metrics/ (adapters) depending only on the ports the controller owns, time and cidr.
const adapterMayUse = '^src/(controller/ports\\.ts$|time\\.ts$|observers\\.ts$|cidr/)';

/** A folder may import itself and what is listed; anything else under src/ is refused. */
function only(name, folder, allowed) {
  return {
    name,
    severity: 'error',
    comment: `${folder} may import only ${allowed.join(', ')}`,
    from: { path: `^src/${folder}` },
    to: { path: '^src/', pathNot: [`^src/${folder}`, ...allowed] },
  };
}

export default {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'files that import each other in a loop', from: {}, to: { circular: true } },
    only('time-is-a-leaf', 'time\\.ts$', []),
    only('observers-is-a-leaf', 'observers\\.ts$', []),
    only('cidr-is-the-ground', 'cidr/', []),
    only('allocator-below-controller', 'allocator/', ['^src/cidr/', '^src/time\\.ts$', '^src/observers\\.ts$']),
    only('term-over-controller', 'term/', ['^src/controller/', '^src/allocator/', '^src/cidr/', '^src/time\\.ts$']),
    only('controller-knows-no-adapter', 'controller/', ['^src/allocator/', '^src/cidr/', '^src/time\\.ts$', '^src/observers\\.ts$']),
    only('kube-implements-ports', 'kube/', [adapterMayUse]),
    only('metrics-implement-ports', 'metrics/', [adapterMayUse]),
    only('leader-over-kube', 'leader/', ['^src/kube/', '^src/time\\.ts$']),
    {
      name: 'nothing-imports-the-cli',
      severity: 'error',
      comment: 'the cli wires everything; nothing below it may reach up',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
