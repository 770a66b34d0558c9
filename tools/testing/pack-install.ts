// Install-as-a-user test utility: builds workspace packages if their dist/ is stale, packs them with
// `npm pack`, installs the tarballs into an empty temporary project (their dependencies from the
// registry, as for a user; a cold npm cache is fine) and runs ESM scripts there, so a test sees
// exactly what `npm install @dfd/<pkg>` gives.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Options of {@link packAndInstall}. */
export interface PackAndInstallOptions {
  /** Workspace package folders to build (when dist/ is missing or stale), pack and install. */
  packageDirs: string[];
  /** Further package folders (e.g. `node_modules/tsyringe`) packed and installed as they are. */
  extraTarballsFrom?: string[];
  /** Registry packages to install too; a bare name is pinned to the version in the repo's node_modules. */
  deps?: string[];
  /** Build stale packages first (default true). */
  build?: boolean;
  /** Limit for each npm command in ms (default 120 000). */
  timeoutMs?: number;
}

/** Output of one command. */
export interface RunResult {
  stdout: string;
  stderr: string;
  code: number | null;
}

/** What npm pack reported for one tarball. */
export interface PackedTarball {
  name: string;
  version: string;
  /** Absolute path of the .tgz. */
  path: string;
  /** Paths inside the package, as npm pack lists them. */
  files: string[];
}

/** A temporary project with the packed packages installed. */
export interface InstalledProject {
  /** The project folder (outside the repository, so no workspace is in sight). */
  projectDir: string;
  /** The tarballs packed from `packageDirs` and `extraTarballsFrom`, in that order. */
  packed: PackedTarball[];
  /** Write `scriptSource` to an .mjs file in the project and run it with this Node. */
  run(scriptSource: string, options?: { timeoutMs?: number }): Promise<RunResult>;
  /** Run this Node with `args` in the project folder (e.g. a file an installed package ships). */
  node(args: string[], options?: { timeoutMs?: number }): Promise<RunResult>;
  /** Remove the project and its tarballs. */
  dispose(): Promise<void>;
}

/** The monorepo root (the folder whose package.json declares workspaces). */
export const REPO_ROOT = findRepoRoot(dirname(fileURLToPath(import.meta.url)));

/**
 * Build, pack and install `packageDirs` (plus `extraTarballsFrom` and `deps`) into a fresh empty
 * project with one `npm install --prefer-offline` (registry reachable, any npm cache state).
 */
export async function packAndInstall(options: PackAndInstallOptions): Promise<InstalledProject> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const work = await mkdtemp(join(tmpdir(), 'dfd-pack-'));
  const tarDir = join(work, 'tarballs');
  const projectDir = join(work, 'project');
  const cleanup = () => rm(work, { recursive: true, force: true });
  try {
    await mkdir(tarDir);
    await mkdir(projectDir);
    await writeFile(join(projectDir, 'package.json'), JSON.stringify({ name: 'dfd-pack-install-test', private: true, type: 'module' }, null, 2));

    const packed: PackedTarball[] = [];
    for (const dir of options.packageDirs) {
      const abs = resolve(dir);
      if (options.build ?? true) await ensureBuilt(abs, timeoutMs);
      packed.push(await npmPack(abs, tarDir, timeoutMs));
    }
    for (const dir of options.extraTarballsFrom ?? []) packed.push(await npmPack(resolve(dir), tarDir, timeoutMs));

    // From the registry, as a user's install: --prefer-offline only skips re-fetching what the
    // cache already holds, so a cold cache (a fresh CI machine) works and a warm one is fast.
    const specs = packed.map((p) => p.path).concat((options.deps ?? []).map(pinToInstalled));
    const res = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', ...specs], projectDir, timeoutMs);
    if (res.code !== 0) throw new Error(`npm install (exit ${res.code}) failed in ${projectDir}:\n${res.stderr.slice(-4000)}`);

    let scripts = 0;
    return {
      projectDir,
      packed,
      async run(scriptSource, runOptions) {
        const file = join(projectDir, `script-${++scripts}.mjs`);
        await writeFile(file, scriptSource);
        return run(process.execPath, [file], projectDir, runOptions?.timeoutMs ?? timeoutMs);
      },
      node(args, runOptions) {
        return run(process.execPath, args, projectDir, runOptions?.timeoutMs ?? timeoutMs);
      },
      dispose: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/**
 * Run the package's `build` script when its main entry is missing or older than any source file
 * (src/**\/*.ts except tests, package.json, tsconfig.build.json). Returns true when it built.
 */
export async function ensureBuilt(packageDir: string, timeoutMs = 120_000): Promise<boolean> {
  const pkg = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { name: string; main?: string };
  const entry = join(packageDir, pkg.main ?? 'dist/index.js');
  if (existsSync(entry)) {
    const built = statSync(entry).mtimeMs;
    const inputs = [join(packageDir, 'package.json'), join(packageDir, 'tsconfig.build.json'), ...sourceFiles(join(packageDir, 'src'))];
    if (inputs.every((f) => !existsSync(f) || statSync(f).mtimeMs <= built)) return false;
  }
  const res = await run('npm', ['run', 'build'], packageDir, timeoutMs);
  if (res.code !== 0 || !existsSync(entry)) {
    throw new Error(`building ${pkg.name} in ${packageDir} failed (npm run build, exit ${res.code}):\n${res.stdout}\n${res.stderr}`);
  }
  return true;
}

function pinToInstalled(spec: string): string {
  // A bare name is 'x' or '@scope/x'; anything with a version or range after it is left alone.
  if (!/^(@[^/@\s]+\/)?[^/@\s]+$/.test(spec)) return spec;
  const manifest = join(REPO_ROOT, 'node_modules', spec, 'package.json');
  if (!existsSync(manifest)) return spec;
  return `${spec}@${(JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version}`;
}

export async function npmPack(dir: string, tarDir: string, timeoutMs: number): Promise<PackedTarball> {
  // Packing from tarDir (outside the repo) keeps npm from treating the folder as a workspace member.
  const res = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tarDir, dir], tarDir, timeoutMs);
  if (res.code !== 0) throw new Error(`npm pack ${dir} failed (exit ${res.code}):\n${res.stderr}`);
  const start = res.stdout.indexOf('[');
  const [info] = JSON.parse(res.stdout.slice(start)) as Array<{ name: string; version: string; filename: string; files: Array<{ path: string }> }>;
  return { name: info!.name, version: info!.version, path: join(tarDir, info!.filename), files: info!.files.map((f) => f.path) };
}

function sourceFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(p));
    else if (/\.(ts|tsx|js|json)$/.test(entry.name) && !/\.test\.ts$/.test(entry.name)) out.push(p);
  }
  return out;
}

function cleanEnv(): NodeJS.ProcessEnv {
  // A parent `npm test -w ...` leaves npm_config_workspace & co. in the environment; NODE_OPTIONS may
  // carry --conditions=@dfd/source. None of that belongs in a stranger's fresh project.
  const env: NodeJS.ProcessEnv = {};
  const keep = new Set(['npm_config_cache', 'npm_config_userconfig', 'npm_config_globalconfig']);
  for (const [k, v] of Object.entries(process.env)) {
    const lower = k.toLowerCase();
    if (lower.startsWith('npm_') && !keep.has(lower)) continue;
    if (['NODE_OPTIONS', 'NODE_PATH', 'TSX_TSCONFIG_PATH', 'FORCE_COLOR'].includes(k) || k.startsWith('VITEST')) continue;
    env[k] = v;
  }
  env.npm_config_update_notifier = 'false';
  // Nx and vitest force colours; scripts' stdout is parsed, so keep it plain.
  env.NO_COLOR = '1';
  return env;
}

function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      stderr += `\n[pack-install] ${cmd} ${args.join(' ')} killed after ${timeoutMs} ms`;
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ stdout, stderr, code });
    });
  });
}

function findRepoRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && 'workspaces' in (JSON.parse(readFileSync(manifest, 'utf8')) as object)) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json with "workspaces" above ${start}`);
  }
}
