/**
 * The one SQL interface both PostgreSQL implementations satisfy: PGlite (embedded, under DATA_DIR)
 * and node-postgres (DATABASE_URL). Domain modules take a `Queryable` and never know which.
 */
export interface Queryable {
	/** Runs one statement with $1-style parameters and returns its rows. */
	query<Row = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<Row[]>;
}

export interface Database extends Queryable {
	readonly kind: 'pglite' | 'postgres';
	/** Runs `work` in one transaction: committed when it resolves, rolled back when it throws. */
	transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
	close(): Promise<void>;
}
