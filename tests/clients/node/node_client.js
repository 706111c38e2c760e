// node-postgres (pg) against eddy: simple protocol for parameterless queries, extended
// for parameterized and named ones, a live view read while inserts happen, a push query
// through a cursor, and SQLSTATEs on errors. Usage: node node_client.js PORT
const assert = require('assert');
const { Client } = require('pg');

async function main() {
  const port = Number(process.argv[2]);
  const c = new Client({ host: '127.0.0.1', port, user: 'eddy', database: 'eddy' });
  await c.connect();
  await c.query('CREATE TABLE clicks (id INT PRIMARY KEY, page TEXT NOT NULL, ms BIGINT)');
  await c.query('CREATE MATERIALIZED VIEW per_page AS SELECT page, count(*) AS n, sum(ms) AS total FROM clicks GROUP BY page');

  // Parameterized inserts (extended protocol, text parameters with OID 0 inferred).
  for (let i = 0; i < 6; i++) {
    const r = await c.query('INSERT INTO clicks VALUES ($1, $2, $3)', [i, i % 2 ? '/b' : '/a', 10 * i]);
    assert.strictEqual(r.rowCount, 1);
  }
  // A live view, read while rows arrive.
  let r = await c.query('SELECT page, n, total FROM per_page ORDER BY page');
  assert.deepStrictEqual(r.rows, [
    { page: '/a', n: '3', total: '60' },
    { page: '/b', n: '3', total: '90' },
  ]);
  assert.deepStrictEqual(r.fields.map((f) => f.dataTypeID), [25, 20, 20]);
  await c.query('INSERT INTO clicks VALUES ($1, $2, $3)', [6, '/a', 5]);
  r = await c.query({ name: 'by_page', text: 'SELECT n FROM per_page WHERE page = $1', values: ['/a'] });
  assert.strictEqual(r.rows[0].n, '4');
  r = await c.query({ name: 'by_page', text: 'SELECT n FROM per_page WHERE page = $1', values: ['/b'] });
  assert.strictEqual(r.rows[0].n, '3');

  // A push query through a cursor: changes as they commit.
  await c.query('BEGIN');
  await c.query('DECLARE live CURSOR FOR SUBSCRIBE per_page WITH (SNAPSHOT = false)');
  const w = new Client({ host: '127.0.0.1', port, user: 'eddy', database: 'eddy' });
  await w.connect();
  await w.query("INSERT INTO clicks VALUES (7, '/c', 1)");
  r = await c.query("FETCH ALL live WITH (timeout = '5s')");
  assert.deepStrictEqual(r.rows.map((x) => [x.eddy_diff, x.page, x.n]), [['1', '/c', '1']]);
  await c.query('CLOSE live');
  await c.query('COMMIT');
  await w.end();

  // Errors carry their SQLSTATE.
  await assert.rejects(c.query('SELECT * FROM nope'), (e) => e.code === '42P01');
  await assert.rejects(c.query('SELEC 1'), (e) => e.code === '42601');
  r = await c.query('SELECT id, count(*) OVER () AS n FROM clicks WHERE id = 0');
  assert.deepStrictEqual(r.rows, [{ id: 0, n: '1' }]);
  await c.end();
  console.log('node-postgres ok');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
