/** Embedded PostgreSQL (PGlite) under DATA_DIR: the default when DATABASE_URL is unset. */
import { PGlite } from '@electric-sql/pglite';
import type { Database, Queryable } from './database';

export async function openPglite(dir: string | null): Promise<Database> {
	const pg = dir === null ? new PGlite() : new PGlite(dir);
	await pg.waitReady;
	let closed = false;
	return {
		kind: 'pglite',
		async query<Row>(sql: string, params: unknown[] = []): Promise<Row[]> {
			const result = await pg.query<Row>(sql, params);
			return result.rows;
		},
		transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
			return pg.transaction((tx) =>
				work({
					async query<Row>(sql: string, params: unknown[] = []): Promise<Row[]> {
						return (await tx.query<Row>(sql, params)).rows;
					}
				})
			);
		},
		async close(): Promise<void> {
			if (closed) return;
			closed = true;
			await pg.close();
		}
	};
}
