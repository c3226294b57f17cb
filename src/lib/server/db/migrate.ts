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

/** Splits a migration into statements on semicolons at line ends (no procedural bodies here). */
function splitStatements(sql: string): string[] {
	return sql
		.split(/;\s*$/m)
		.map((s) => s.replace(/^\s*--.*$/gm, '').trim())
		.filter(Boolean);
}
