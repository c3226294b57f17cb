// Builds the web app when build/ is missing or older than its sources, so `npm start` and
// `npm test` work straight after `npm install`.
import { execSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const marker = path.join(root, 'build', 'handler.js');

function newestMtime(target) {
	const stat = statSync(target);
	if (!stat.isDirectory()) return stat.mtimeMs;
	let newest = stat.mtimeMs;
	for (const entry of readdirSync(target)) newest = Math.max(newest, newestMtime(path.join(target, entry)));
	return newest;
}

const sources = ['src', 'static', 'svelte.config.js', 'vite.config.ts', 'package.json'].map((p) => path.join(root, p));
const built = existsSync(marker) ? statSync(marker).mtimeMs : 0;
if (built === 0 || sources.some((s) => existsSync(s) && newestMtime(s) > built)) {
	console.log('Building the web app…');
	execSync('npx vite build', { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
}
