import { describe } from 'vitest';
import { openPglite } from '../../src/lib/server/db/pglite';
import { openPostgres } from '../../src/lib/server/db/postgres';
import { describeDatabaseConformance } from '../conformance/database.conformance';

describe('PGlite (in memory)', () => {
	describeDatabaseConformance('pglite', () => openPglite(null));
});

// Registered only when PostgreSQL is configured, so a run without it reports fewer tests instead
// of a skip that reads like coverage.
const databaseUrl = process.env.DATABASE_URL;
if (databaseUrl) {
	describe('PostgreSQL', () => {
		describeDatabaseConformance(`postgres (${new URL(databaseUrl).host})`, () => openPostgres(databaseUrl));
	});
}
