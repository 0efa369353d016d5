/**
 * Fails (exit 1) when relative imports under src/ or sw/ form a cycle. Part of `npm run lint`.
 * A plain graph walk over import specifiers: no bundler, no type information needed.
 */
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOTS = ['src', 'sw'];
const SOURCE = /\.(ts|tsx)$/;
const IMPORT = /(?:import|export)\s+(?:type\s+)?(?:[^'"]*?\sfrom\s+)?['"](\.{1,2}\/[^'"]+)['"]/g;

function walk(dir: string, out: string[]): string[] {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (SOURCE.test(name) && !name.endsWith('.d.ts')) out.push(resolve(path));
  }
  return out;
}

function resolveImport(from: string, spec: string): string | undefined {
  const base = resolve(dirname(from), spec).replace(/\.js$/, '');
  for (const candidate of [`${base}.ts`, `${base}.tsx`, join(base, 'index.ts'), join(base, 'index.tsx')]) {
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

const files = ROOTS.flatMap((r) => walk(r, []));
const graph = new Map<string, string[]>();
for (const file of files) {
  const deps: string[] = [];
  for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
    const target = resolveImport(file, m[1]!);
    if (target) deps.push(target);
  }
  graph.set(file, deps);
}

// Iterative DFS with colours; reports every back edge as a cycle.
const colour = new Map<string, 'grey' | 'black'>();
const cycles: string[][] = [];
for (const start of graph.keys()) {
  if (colour.has(start)) continue;
  const stack: { node: string; next: number }[] = [{ node: start, next: 0 }];
  colour.set(start, 'grey');
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const deps = graph.get(top.node) ?? [];
    if (top.next >= deps.length) {
      colour.set(top.node, 'black');
      stack.pop();
      continue;
    }
    const dep = deps[top.next++]!;
    const c = colour.get(dep);
    if (c === 'grey') {
      const from = stack.findIndex((f) => f.node === dep);
      cycles.push([...stack.slice(from).map((f) => f.node), dep]);
    } else if (c === undefined) {
      colour.set(dep, 'grey');
      stack.push({ node: dep, next: 0 });
    }
  }
}

if (cycles.length > 0) {
  for (const cycle of cycles) console.error('import cycle: ' + cycle.map((f) => relative('.', f)).join(' -> '));
  process.exit(1);
}
console.log(`check-cycles: ${files.length} files, no import cycles`);
