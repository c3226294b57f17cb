import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { splitStatements } from '../../src/lib/server/db/migrate';

const MIGRATIONS = path.join(import.meta.dirname, '..', '..', 'migrations');

describe('migration statements', () => {
	it('splits at semicolons that end a line and drops comment lines', () => {
		const sql = '-- a comment\ncreate table a (x int);\n\n-- another; with a semicolon;\nalter table a\n\tadd column y int;\n';
		expect(splitStatements(sql)).toEqual(['create table a (x int)', 'alter table a\n\tadd column y int']);
	});

	it('keeps a dollar-quoted function body, semicolons and all, in one statement', () => {
		const sql = [
			'create function f() returns int language plpgsql as $body$',
			'begin',
			'\t-- kept: inside the body',
			'\treturn 1;',
			'end',
			'$body$;',
			'select f();'
		].join('\n');
		expect(splitStatements(sql)).toEqual([
			'create function f() returns int language plpgsql as $body$\nbegin\n\t-- kept: inside the body\n\treturn 1;\nend\n$body$',
			'select f()'
		]);
	});

	it('ends a body only at its own tag', () => {
		const sql = 'create function g() returns text language sql as $outer$ select $$x;$$ $outer$;\nselect 2;';
		expect(splitStatements(sql)).toEqual(['create function g() returns text language sql as $outer$ select $$x;$$ $outer$', 'select 2']);
	});

	it('reads the group-commit migration as one statement', async () => {
		const statements = splitStatements(await readFile(path.join(MIGRATIONS, '004_room_group_commit.sql'), 'utf8'));
		expect(statements).toHaveLength(1);
		expect(statements[0]).toMatch(/^create function room_group_commit\(/);
		expect(statements[0]).toMatch(/\$body\$$/);
	});
});
