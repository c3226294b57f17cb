/** A real PostgreSQL server through node-postgres (DATABASE_URL). */
import pg from 'pg';
import type { Database, Queryable } from './database';

// int8 (counts, sequence values) as JavaScript numbers: every value we store fits in 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export async function openPostgres(url: string, maxConnections = 10): Promise<Database> {
	const pool = new pg.Pool({ connectionString: url, max: maxConnections });
	pool.on('error', (error) => {
		// An idle client lost its connection; the pool replaces it. Log, never crash.
		console.error('[db] idle PostgreSQL client error:', error.message);
	});
	await pool.query('select 1');
	let closed = false;
	return {
		kind: 'postgres',
		async query<Row>(sql: string, params: unknown[] = []): Promise<Row[]> {
			return (await pool.query(sql, params)).rows as Row[];
		},
		async transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
			const client = await pool.connect();
			try {
				await client.query('begin');
				const result = await work({
					async query<Row>(sql: string, params: unknown[] = []): Promise<Row[]> {
						return (await client.query(sql, params)).rows as Row[];
					}
				});
				await client.query('commit');
				return result;
			} catch (error) {
				await client.query('rollback').catch(() => undefined);
				throw error;
			} finally {
				client.release();
			}
		},
		async close(): Promise<void> {
			if (closed) return;
			closed = true;
			await pool.end();
		}
	};
}
