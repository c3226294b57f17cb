/**
 * Applies the numbered, forward-only SQL files in migrations/ that the database has not seen,
 * each in its own transaction, under an advisory lock so concurrent instances take turns.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Database } from './database';

const MIGRATION_FILE = /^(\d{3,})_[a-z0-9_]+\.sql$/;
/** Arbitrary constant shared by every instance of this app: the advisory lock's key. */
const MIGRATION_LOCK_KEY = 724_311_902;

export interface MigrationResult {
	applied: string[];
}

export async function migrate(db: Database, dir: string): Promise<MigrationResult> {
	const files = (await readdir(dir)).filter((f) => MIGRATION_FILE.test(f)).sort();
	const applied: string[] = [];
	await db.transaction(async (tx) => {
		await tx.query('select pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
		await tx.query(
			`create table if not exists schema_migrations (
				name text primary key,
				applied_at timestamptz not null default now()
			)`
		);
		const done = new Set(
			(await tx.query<{ name: string }>('select name from schema_migrations')).map((r) => r.name)
		);
		for (const file of files) {
			if (done.has(file)) continue;
			const sql = await readFile(path.join(dir, file), 'utf8');
			for (const statement of splitStatements(sql)) await tx.query(statement);
			await tx.query('insert into schema_migrations (name) values ($1)', [file]);
			applied.push(file);
		}
	});
	return { applied };
}

/**
 * Splits a migration into statements on semicolons at line ends, except inside a dollar-quoted
 * body (`$tag$ … $tag$`: a function's), and drops comment lines outside such bodies.
 */
export function splitStatements(sql: string): string[] {
	const statements: string[] = [];
	let lines: string[] = [];
	let quote: string | null = null;
	for (const line of sql.split('\n')) {
		if (quote === null && /^\s*--/.test(line)) continue;
		lines.push(line);
		for (const [tag] of line.matchAll(/\$[A-Za-z_]*\$/g)) {
			if (quote === null) quote = tag;
			else if (tag === quote) quote = null;
		}
		if (quote === null && /;\s*$/.test(line)) {
			statements.push(lines.join('\n').replace(/;\s*$/, '').trim());
			lines = [];
		}
	}
	statements.push(lines.join('\n').trim());
	return statements.filter(Boolean);
}
