// Starts a real Caremesh node for the browser tests: a fresh SQLite data directory, a free port,
// accounts created through the admin CLI, and two groups created through the JSON API.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..', '..');
const targetDir = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), '.cache/caremesh/target');
export const binary = process.env.CAREMESH_BIN || path.join(targetDir, 'debug', 'caremesh');

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function cli(env, args, stdin) {
  const r = spawnSync(binary, args, { env, input: stdin ?? '', encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`caremesh ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  }
  return r.stdout;
}

export const PASSWORDS = {
  admin: 'admin-password-123',
  drli: 'doctor-password-123',
};

export async function startNode() {
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'caremesh-browser-'));
  const base = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    CAREMESH_LISTEN: `127.0.0.1:${port}`,
    CAREMESH_DATA_DIR: dataDir,
    CAREMESH_BASE_URL: `${base}/`,
    CAREMESH_HOSPITAL_NAME: '唐山市人民医院',
    CAREMESH_LOG__LEVEL: 'warn',
  };
  cli(env, ['create-admin', '--username', 'admin', '--display-name', '院办王老师', '--password-stdin'], PASSWORDS.admin + '\n');
  cli(env, ['account', 'create', '--role', 'doctor', '--username', 'dr.li', '--display-name', '李医生', '--password-stdin'], PASSWORDS.drli + '\n');
  const child = spawn(binary, ['serve'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  let exited = false;
  child.on('exit', () => { exited = true; });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error('caremesh serve exited early');
    try {
      const r = await fetch(`${base}/readyz`);
      if (r.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error('caremesh serve did not become ready');
    await new Promise((r) => setTimeout(r, 100));
  }
  // The first groups are set up through the JSON API (a journey creates one from the page).
  const login = await fetch(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'dr.li', password: PASSWORDS.drli }),
  });
  const { token } = await login.json();
  const groups = [];
  for (const [name, condition] of [['乳腺癌术后康复 · 唐山', '乳腺癌'], ['糖尿病自我管理 · 唐山', '2型糖尿病']]) {
    const r = await fetch(`${base}/api/v1/groups`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ name, condition, city: '唐山', language: 'zh-CN', description: '术后康复与生活方式教育。' }),
    });
    if (r.status !== 201) throw new Error(`group creation failed: ${r.status} ${await r.text()}`);
    groups.push(await r.json());
  }
  return {
    base,
    groups,
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export { root };
