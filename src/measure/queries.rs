//! Every catalog query and every piece of measuring machinery, in one place.
//!
//! The machinery lives in the schema `pgshadow_internal`, owned by the bootstrap superuser. The plan role can call
//! its reading functions (they only describe the caller's own transaction) but cannot change any of it. Functions run
//! with `search_path = pg_catalog, pg_temp` and every name is schema-qualified, so nothing a plan creates or any
//! `search_path` it sets can stand in for them. The queries the plan's connection sends call only these
//! schema-qualified functions, with no operators a plan could shadow.

/// Installs the machinery in a database. Run as the bootstrap superuser after the source is loaded.
///
/// The reading functions called around every statement are PL/pgSQL, whose plans a session keeps: an SQL function's
/// body is parsed and planned again at every call before PostgreSQL 18, which cost a measured statement about four
/// times the reading itself. A pooled session (and a session warmed ahead, [`super::open_session`]) plans them once.
pub(crate) const INSTALL: &str = r#"
CREATE SCHEMA pgshadow_internal;
REVOKE ALL ON SCHEMA pgshadow_internal FROM PUBLIC;
GRANT USAGE ON SCHEMA pgshadow_internal TO PUBLIC;

-- Objects dropped in the current transaction, as the sql_drop event trigger saw them.
CREATE TABLE pgshadow_internal.dropped (
    seq bigint GENERATED ALWAYS AS IDENTITY,
    classid oid, objid oid, objsubid integer,
    original boolean, normal boolean,
    object_type text, schema_name text, object_identity text
);
REVOKE ALL ON pgshadow_internal.dropped FROM PUBLIC;

CREATE FUNCTION pgshadow_internal.on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    INSERT INTO pgshadow_internal.dropped
        (classid, objid, objsubid, original, normal, object_type, schema_name, object_identity)
    SELECT d.classid, d.objid, d.objsubid, d.original, d.normal, d.object_type, d.schema_name, d.object_identity
    FROM pg_catalog.pg_event_trigger_dropped_objects() AS d;
END
$fn$;
REVOKE ALL ON FUNCTION pgshadow_internal.on_sql_drop() FROM PUBLIC;
CREATE EVENT TRIGGER pgshadow_sql_drop ON sql_drop EXECUTE FUNCTION pgshadow_internal.on_sql_drop();

-- Schema changes in the current transaction, as the ddl_command_end event trigger saw them.
CREATE TABLE pgshadow_internal.changed (
    seq bigint GENERATED ALWAYS AS IDENTITY,
    command_tag text, object_type text, object_identity text
);
REVOKE ALL ON pgshadow_internal.changed FROM PUBLIC;

CREATE FUNCTION pgshadow_internal.on_ddl_command_end() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    -- GRANT and REVOKE come without an identity.
    INSERT INTO pgshadow_internal.changed (command_tag, object_type, object_identity)
    SELECT d.command_tag, lower(d.object_type), coalesce(d.object_identity, '')
    FROM pg_catalog.pg_event_trigger_ddl_commands() AS d;
END
$fn$;
REVOKE ALL ON FUNCTION pgshadow_internal.on_ddl_command_end() FROM PUBLIC;

-- Schema changes the event trigger saw after position `since`.
CREATE FUNCTION pgshadow_internal.changed_since(since bigint,
    OUT seq bigint, OUT command_tag text, OUT object_type text, OUT object_identity text)
RETURNS SETOF record
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
BEGIN
    RETURN QUERY SELECT c.seq, c.command_tag, c.object_type, c.object_identity
    FROM pgshadow_internal.changed AS c WHERE c.seq > since ORDER BY c.seq;
END
$fn$;

-- The non-null values of every column of a table, in one scan, by column identity (`schema.table.column`, as
-- pg_event_trigger_dropped_objects names a dropped column).
CREATE FUNCTION pgshadow_internal.column_values(rel oid, OUT column_identity text, OUT non_null bigint)
RETURNS SETOF record
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    exprs text;
    names text[];
    counts bigint[];
BEGIN
    SELECT string_agg(format('count(%I)', a.attname), ', ' ORDER BY a.attnum),
           array_agg(format('%I.%I.%I', n.nspname, c.relname, a.attname) ORDER BY a.attnum)
    INTO exprs, names
    FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind = 'r';
    IF exprs IS NULL THEN
        RETURN;
    END IF;
    EXECUTE format('SELECT ARRAY[%s]::bigint[] FROM ONLY %s', exprs, rel::regclass) INTO counts;
    RETURN QUERY SELECT * FROM unnest(names, counts);
END
$fn$;

-- Every ordinary table (and partition) with its storage, its size and this transaction's row counters. (A TRUNCATE
-- of storage created in the same transaction happens in place: only the size shows it.)
CREATE FUNCTION pgshadow_internal.table_state(
    OUT relid oid, OUT table_name text, OUT relfilenode oid, OUT size bigint,
    OUT inserted bigint, OUT updated bigint, OUT deleted bigint)
RETURNS SETOF record
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
BEGIN
    RETURN QUERY SELECT c.oid, format('%I.%I', n.nspname, c.relname), c.relfilenode, pg_relation_size(c.oid),
           pg_stat_get_xact_tuples_inserted(c.oid),
           pg_stat_get_xact_tuples_updated(c.oid),
           pg_stat_get_xact_tuples_deleted(c.oid)
    FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r'
      AND n.nspname <> ALL (ARRAY['pg_catalog', 'information_schema', 'pgshadow_internal'])
      AND n.nspname !~ '^pg_toast'
      AND (n.nspname !~ '^pg_temp_' OR n.oid = pg_my_temp_schema());
END
$fn$;

-- The exact number of rows in one table, whoever may read it (the plan role may lack SELECT, or be hidden rows by
-- row-level security).
CREATE FUNCTION pgshadow_internal.count_rows(rel oid) RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM ONLY %s', rel::regclass) INTO n;
    RETURN n;
END
$fn$;

-- An order-independent fingerprint of a column's values, as text (a numeric's without the zeros its scale adds); with
-- `as_type`, of its values cast to that type first (a retyped column cast back to its old type: equal fingerprints
-- mean no value changed). NULL when the values cannot be read that way.
CREATE FUNCTION pgshadow_internal.column_fingerprint(rel oid, col name, as_type text) RETURNS numeric
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    value text := format('%I', col);
    of_type regtype;
    f numeric;
BEGIN
    IF as_type IS NOT NULL THEN
        value := format('(%s::%s)', value, as_type);
        of_type := to_regtype(as_type);
    ELSE
        SELECT a.atttypid INTO of_type FROM pg_attribute AS a WHERE a.attrelid = rel AND a.attname = col;
    END IF;
    -- Equal numerics print differently by their scale (1.0 and 1): trimmed, they print alike (PostgreSQL 13 on).
    IF of_type = 'numeric'::regtype AND current_setting('server_version_num')::integer >= 130000 THEN
        value := format('trim_scale(%s)', value);
    END IF;
    EXECUTE format('SELECT coalesce(sum(hashtext(%s::text)::numeric), 0) FROM ONLY %s', value, rel::regclass) INTO f;
    RETURN f;
EXCEPTION WHEN OTHERS THEN
    RETURN NULL;
END
$fn$;

-- Every column of the user tables, keyed by (table, attnum) so that a rename keeps its key.
CREATE FUNCTION pgshadow_internal.column_state(OUT relid oid, OUT attnum smallint, OUT column_identity text,
    OUT data_type text, OUT not_null boolean, OUT default_expr text, OUT column_name name)
RETURNS SETOF record
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
BEGIN
    RETURN QUERY SELECT c.oid, a.attnum, format('%I.%I.%I', n.nspname, c.relname, a.attname),
           format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attname
    FROM pg_attribute AS a
    JOIN pg_class AS c ON c.oid = a.attrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
      AND n.nspname <> ALL (ARRAY['pg_catalog', 'information_schema', 'pgshadow_internal'])
      AND n.nspname !~ '^pg_toast'
      AND (n.nspname !~ '^pg_temp_' OR n.oid = pg_my_temp_schema());
END
$fn$;

-- Every constraint of the user tables.
CREATE FUNCTION pgshadow_internal.constraint_state(OUT constraint_oid oid, OUT relid oid,
    OUT constraint_identity text, OUT constraint_type text, OUT validated boolean, OUT inherited boolean)
RETURNS SETOF record
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
BEGIN
    RETURN QUERY SELECT co.oid, c.oid, format('%I on %I.%I', co.conname, n.nspname, c.relname),
           CASE co.contype WHEN 'c' THEN 'check' WHEN 'f' THEN 'foreign key' WHEN 'p' THEN 'primary key'
                           WHEN 'u' THEN 'unique' WHEN 'x' THEN 'exclusion' ELSE co.contype::text END,
           co.convalidated,
           -- A child's or partition's copy of its parent's constraint (a CHECK has no dependency, only no local
           -- definition), or a foreign key's copy for a partition it references ('I' on PostgreSQL 11).
           NOT co.conislocal OR EXISTS (SELECT FROM pg_depend AS d
                   WHERE d.classid = 'pg_constraint'::regclass AND d.objid = co.oid
                     AND d.refclassid = 'pg_constraint'::regclass AND d.deptype IN ('i', 'I', 'P'))
    FROM pg_constraint AS co
    JOIN pg_class AS c ON c.oid = co.conrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname <> ALL (ARRAY['pg_catalog', 'information_schema', 'pgshadow_internal'])
      AND n.nspname !~ '^pg_toast'
      AND (n.nspname !~ '^pg_temp_' OR n.oid = pg_my_temp_schema());
END
$fn$;

-- Every rewrite rule (not a view's `_RETURN`): relation, `name on relation`, event and INSTEAD.
CREATE FUNCTION pgshadow_internal.rules(OUT relid oid, OUT rule_identity text, OUT event text, OUT instead boolean)
RETURNS SETOF record
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
BEGIN
    RETURN QUERY SELECT r.ev_class, format('%I on %I.%I', r.rulename, n.nspname, c.relname), r.ev_type::text,
           r.is_instead
    FROM pg_rewrite AS r
    JOIN pg_class AS c ON c.oid = r.ev_class
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE r.rulename <> '_RETURN';
END
$fn$;

-- Foreign keys with no index whose leading columns cover their referencing columns, each with its ends: the table
-- it references (oid and name), the table it is on, and the referenced columns.
CREATE FUNCTION pgshadow_internal.unindexed_foreign_keys(OUT constraint_oid oid, OUT referenced oid,
    OUT referencing oid, OUT referenced_name text, OUT referenced_columns text[])
RETURNS SETOF record
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
BEGIN
    RETURN QUERY SELECT co.oid, co.confrelid, co.conrelid, format('%I.%I', n.nspname, c.relname),
           ARRAY(SELECT a.attname::text FROM pg_attribute AS a
                 WHERE a.attrelid = co.confrelid AND a.attnum = ANY (co.confkey) ORDER BY a.attnum)
    FROM pg_constraint AS co
    JOIN pg_class AS c ON c.oid = co.confrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE co.contype = 'f'
      AND NOT EXISTS (
          SELECT 1 FROM pg_index AS i
          WHERE i.indrelid = co.conrelid AND i.indpred IS NULL
            AND (i.indkey::int2[])[0:cardinality(co.conkey) - 1] @> co.conkey)
    ORDER BY co.oid;
END
$fn$;

-- The integer columns of foreign keys by oid, with the key columns they reference: the key, then `schema.table.column`
-- and type of each side.
CREATE FUNCTION pgshadow_internal.foreign_key_column_types(keys oid[], OUT constraint_oid oid, OUT column_identity text,
    OUT column_type text, OUT referenced_identity text, OUT referenced_type text)
RETURNS SETOF record
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
BEGIN
    RETURN QUERY SELECT co.oid,
           format('%I.%I.%I', cn.nspname, cc.relname, ca.attname), format_type(ca.atttypid, NULL),
           format('%I.%I.%I', pn.nspname, pc.relname, pa.attname), format_type(pa.atttypid, NULL)
    FROM pg_constraint AS co
    CROSS JOIN LATERAL ROWS FROM (unnest(co.conkey), unnest(co.confkey)) AS k(child, parent)
    JOIN pg_attribute AS ca ON ca.attrelid = co.conrelid AND ca.attnum = k.child
    JOIN pg_class AS cc ON cc.oid = co.conrelid
    JOIN pg_namespace AS cn ON cn.oid = cc.relnamespace
    JOIN pg_attribute AS pa ON pa.attrelid = co.confrelid AND pa.attnum = k.parent
    JOIN pg_class AS pc ON pc.oid = co.confrelid
    JOIN pg_namespace AS pn ON pn.oid = pc.relnamespace
    WHERE co.oid = ANY (keys) AND co.contype = 'f'
      AND ca.atttypid IN (21, 23, 20) AND pa.atttypid IN (21, 23, 20);
END
$fn$;

-- Relation locks this backend holds.
CREATE FUNCTION pgshadow_internal.relation_locks(OUT relid oid, OUT mode text, OUT table_oid oid, OUT kind text,
    OUT relation_name text) RETURNS SETOF record
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
BEGIN
    -- A relation the transaction dropped has no catalog row any more, but its lock is still held.
    RETURN QUERY SELECT l.relation, l.mode, coalesce(i.indrelid, l.relation),
           CASE WHEN c.relkind IN ('i', 'I') THEN 'index' ELSE 'table' END,
           CASE WHEN c.oid IS NOT NULL THEN format('%I.%I', n.nspname, c.relname) END
    FROM pg_locks AS l
    LEFT JOIN pg_class AS c ON c.oid = l.relation
    LEFT JOIN pg_namespace AS n ON n.oid = c.relnamespace
    LEFT JOIN pg_index AS i ON i.indexrelid = l.relation
    WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted AND l.relation IS NOT NULL;
END
$fn$;

-- Calls of user functions in this transaction (track_functions = all), with the user triggers each one backs. What
-- pg_stat_xact_user_functions reads, but only over functions made after initdb (oid >= 16384, FirstNormalObjectId):
-- an index range instead of a scan of all of pg_proc, which took most of this function's time at every statement.
-- Only a superuser can add a function with a lower oid.
CREATE FUNCTION pgshadow_internal.function_calls(OUT funcid oid, OUT function_name text, OUT calls bigint,
    OUT triggers text[], OUT language name)
RETURNS SETOF record
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
BEGIN
    RETURN QUERY SELECT p.oid, format('%I.%I', n.nspname, p.proname), pg_stat_get_xact_function_calls(p.oid),
           ARRAY(SELECT format('%I on %s', t.tgname, t.tgrelid::regclass)
                 FROM pg_trigger AS t WHERE t.tgfoid = p.oid AND NOT t.tgisinternal ORDER BY 1),
           l.lanname
    FROM pg_proc AS p
    JOIN pg_namespace AS n ON n.oid = p.pronamespace
    JOIN pg_language AS l ON l.oid = p.prolang
    WHERE p.oid >= 16384 AND p.prolang <> 12 AND n.nspname <> 'pgshadow_internal'
      AND pg_stat_get_xact_function_calls(p.oid) IS NOT NULL;
END
$fn$;

-- Objects the event trigger saw after position `since`.
CREATE FUNCTION pgshadow_internal.dropped_since(since bigint,
    OUT seq bigint, OUT classid oid, OUT objid oid, OUT original boolean, OUT normal boolean,
    OUT object_type text, OUT schema_name text, OUT object_identity text)
RETURNS SETOF record
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
BEGIN
    RETURN QUERY SELECT d.seq, d.classid, d.objid, d.original, d.normal, d.object_type, d.schema_name, d.object_identity
    FROM pgshadow_internal.dropped AS d WHERE d.seq > since ORDER BY d.seq;
END
$fn$;

-- The tables named by a statement (quoted names), resolved in the caller's search_path, with their partitions
-- and inheritance children.
CREATE FUNCTION pgshadow_internal.resolve_tables(names text[], path text) RETURNS SETOF oid
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    roots oid[];
BEGIN
    PERFORM set_config('search_path', path, true);
    SELECT array_agg(r) INTO roots
    FROM (SELECT to_regclass(x) AS r FROM unnest(names) AS x) AS t WHERE r IS NOT NULL;
    PERFORM set_config('search_path', 'pg_catalog, pg_temp', true);
    RETURN QUERY
    WITH RECURSIVE tree(oid) AS (
        SELECT unnest(coalesce(roots, '{}'::oid[]))
        UNION
        SELECT i.inhrelid FROM pg_inherits AS i JOIN tree ON i.inhparent = tree.oid
    )
    SELECT tree.oid FROM tree;
END
$fn$;

-- The foreign-key paths along which deleting rows of the tables `roots` (with `on_update`, updating their columns
-- `cols`: any when NULL, or when a BEFORE UPDATE row trigger or an UPDATE rule may change the others) deletes or
-- changes rows in others, as CASCADE_PATHS describes them: CASCADE followed through every level (an update's while the
-- columns it changes are referenced on), SET NULL and SET DEFAULT as the last step; NO ACTION and RESTRICT too, as the
-- last step, where they would refuse it. PL/pgSQL, so that a session plans
-- the recursive query once; its search_path is pg_catalog's alone, so plain operators are the built-in ones.
CREATE FUNCTION pgshadow_internal.cascade_paths(roots oid[], cols text[] DEFAULT NULL, on_update boolean DEFAULT false,
    OUT child oid, OUT action text, OUT foreign_key text, OUT path oid[], OUT names text[])
RETURNS SETOF record
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH RECURSIVE edge(parent, child, action, fk, keys, referenced) AS (
        SELECT c.confrelid, c.conrelid, CASE WHEN on_update THEN c.confupdtype ELSE c.confdeltype END, c.oid,
               c.conkey, c.confkey
        FROM pg_constraint AS c WHERE c.contype = 'f'
    ), reach(child, action, fk, path, keys) AS (
        SELECT e.child, e.action, e.fk, ARRAY[e.parent, e.child], e.keys FROM edge AS e
        WHERE e.parent = ANY (roots)
          AND (NOT on_update OR cols IS NULL
               OR EXISTS (SELECT FROM pg_attribute AS a WHERE a.attrelid = e.parent
                          AND a.attnum = ANY (e.referenced) AND a.attname::text = ANY (cols))
               -- ROW 1, BEFORE 2, UPDATE 16
               OR EXISTS (SELECT FROM pg_trigger AS g WHERE g.tgrelid = e.parent AND NOT g.tgisinternal
                          AND (g.tgtype::integer & 19) = 19)
               OR EXISTS (SELECT FROM pg_rewrite AS w WHERE w.ev_class = e.parent AND w.ev_type = '2'))
        UNION ALL
        SELECT e.child, e.action, e.fk, r.path || e.child, e.keys
        FROM reach AS r JOIN edge AS e ON e.parent = r.child
        WHERE r.action = 'c'
          AND (NOT on_update OR e.referenced && r.keys) AND NOT e.child = ANY (r.path))
    SELECT r.child, r.action::text, format('%I on %I.%I', k.conname, n.nspname, t.relname), r.path,
        ARRAY(SELECT format('%I.%I', pn.nspname, pc.relname)
              FROM unnest(r.path) WITH ORDINALITY AS u(relid, i)
              JOIN pg_class AS pc ON pc.oid = u.relid
              JOIN pg_namespace AS pn ON pn.oid = pc.relnamespace ORDER BY u.i)
    FROM reach AS r JOIN pg_constraint AS k ON k.oid = r.fk
    JOIN pg_class AS t ON t.oid = k.conrelid
    JOIN pg_namespace AS n ON n.oid = t.relnamespace
    ORDER BY cardinality(r.path), 3;
END
$fn$;

-- The partitioned tables and materialized views: tables a statement can lock that hold no rows of their own (not in
-- table_state), each with the partitions below it that do, foreign tables among them (none for a materialized view).
CREATE FUNCTION pgshadow_internal.other_tables(OUT relid oid, OUT relation_name text, OUT partitioned boolean,
    OUT leaves oid[])
RETURNS SETOF record
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
BEGIN
    RETURN QUERY SELECT c.oid, format('%I.%I', n.nspname, c.relname), c.relkind = 'p',
        ARRAY(WITH RECURSIVE tree(oid) AS (
                  SELECT i.inhrelid FROM pg_inherits AS i WHERE i.inhparent = c.oid
                  UNION
                  SELECT i.inhrelid FROM pg_inherits AS i JOIN tree ON i.inhparent = tree.oid)
              SELECT t.oid FROM tree AS t JOIN pg_class AS l ON l.oid = t.oid WHERE l.relkind IN ('r', 'f') ORDER BY 1)
    FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('p', 'm')
      AND n.nspname <> ALL (ARRAY['pg_catalog', 'information_schema', 'pgshadow_internal'])
      AND n.nspname !~ '^pg_toast'
      AND (n.nspname !~ '^pg_temp_' OR n.oid = pg_my_temp_schema());
END
$fn$;

-- Last, so that installing the machinery is not logged as a schema change.
CREATE EVENT TRIGGER pgshadow_ddl_command_end ON ddl_command_end
    EXECUTE FUNCTION pgshadow_internal.on_ddl_command_end();
"#;

/// What [`super::open_session`] reads besides the queries with no parameters, to warm a new session's caches.
pub(crate) const WARM_UP: &str = "SELECT FROM pgshadow_internal.dropped_since(0); \
     SELECT FROM pgshadow_internal.changed_since(0); \
     SELECT FROM pgshadow_internal.cascade_paths('{}'); \
     SELECT FROM pgshadow_internal.resolve_tables('{}', pg_catalog.current_setting('search_path'))";

/// What [`super::open_session`] runs last, to warm a new session for DDL: the first DDL statement of a session compiles
/// the event triggers' functions and fills the caches dependency tracking reads, which took a plan's first DDL
/// statement about 1 ms more than the next. A temporary table is made and dropped in a transaction that is rolled
/// back, so nothing is left of it (its event-log rows go with it; only the logs' sequences moved on).
pub(crate) const WARM_UP_DDL: &str = "BEGIN; \
     CREATE TEMPORARY TABLE pgshadow_warm_up (id integer PRIMARY KEY); \
     DROP TABLE pg_temp.pgshadow_warm_up; \
     ROLLBACK";

/// Baseline: every table with its exact row count, at the start of the plan's transaction.
pub(crate) const BASELINE_COUNTS: &str =
    "SELECT relid, pgshadow_internal.count_rows(relid) FROM pgshadow_internal.table_state()";

/// The state of every table now.
pub(crate) const TABLE_STATE: &str =
    "SELECT relid, table_name, relfilenode, size, inserted, updated, deleted FROM pgshadow_internal.table_state()";

/// User functions called in the transaction so far, with the triggers they back and their language.
pub(crate) const FUNCTION_CALLS: &str =
    "SELECT funcid, function_name, calls, triggers, language::pg_catalog.text FROM pgshadow_internal.function_calls()";

/// Schema changes after a position of the log.
pub(crate) const CHANGED_SINCE: &str =
    "SELECT seq, command_tag, object_type, object_identity FROM pgshadow_internal.changed_since($1)";

/// The non-null values of each column of a table.
pub(crate) const COLUMN_VALUES: &str = "SELECT column_identity, non_null FROM pgshadow_internal.column_values($1)";

/// `lock_timeout` and `statement_timeout` as the plan has them.
pub(crate) const SETTINGS: &str =
    "SELECT pg_catalog.current_setting('lock_timeout'), pg_catalog.current_setting('statement_timeout')";

/// Every user column.
pub(crate) const COLUMN_STATE: &str = "SELECT relid, attnum, column_identity, data_type, not_null, default_expr, \
     column_name::pg_catalog.text FROM pgshadow_internal.column_state()";

/// The fingerprint of a column's values (`$3`: cast to that type first, or NULL).
pub(crate) const COLUMN_FINGERPRINT: &str =
    "SELECT pgshadow_internal.column_fingerprint($1, $2::pg_catalog.text::pg_catalog.name, $3)::pg_catalog.text";

/// Every user constraint.
pub(crate) const CONSTRAINT_STATE: &str =
    "SELECT constraint_oid, relid, constraint_identity, constraint_type, validated, inherited \
     FROM pgshadow_internal.constraint_state()";

/// Foreign keys without a supporting index, each with the table it references (oid and name), the table it is on, and
/// the referenced columns.
pub(crate) const UNINDEXED_FOREIGN_KEYS: &str = "SELECT constraint_oid, referenced, referencing, referenced_name, \
     referenced_columns FROM pgshadow_internal.unindexed_foreign_keys()";

/// The integer columns of foreign keys by oid (`$1`), with the key columns they reference: the key, then
/// `schema.table.column` and type of each side.
pub(crate) const FOREIGN_KEY_COLUMN_TYPES: &str = "SELECT constraint_oid, column_identity, column_type, \
     referenced_identity, referenced_type FROM pgshadow_internal.foreign_key_column_types($1)";

/// The relation locks the plan's backend holds.
pub(crate) const RELATION_LOCKS: &str =
    "SELECT relid, mode, table_oid, kind, relation_name FROM pgshadow_internal.relation_locks()";

/// The exact row count of one table.
pub(crate) const COUNT_ROWS: &str = "SELECT pgshadow_internal.count_rows($1)";

/// Objects dropped after a position of the log.
pub(crate) const DROPPED_SINCE: &str = "SELECT seq, classid, objid, original, normal, object_type, schema_name, \
     object_identity FROM pgshadow_internal.dropped_since($1)";

/// Tables named by a statement (`$1`: quoted names), resolved in the plan's `search_path` of the moment.
pub(crate) const RESOLVE_TABLES: &str =
    "SELECT pgshadow_internal.resolve_tables($1, pg_catalog.current_setting('search_path'))";

/// The start time of the current transaction: if it changes, the plan ended the dry-run's transaction.
pub(crate) const TRANSACTION_START: &str = "SELECT pg_catalog.transaction_timestamp()::pg_catalog.text";

/// Every rewrite rule (not a view's `_RETURN`): relation, `name on relation`, event and INSTEAD.
pub(crate) const RULES: &str = "SELECT relid, rule_identity, event, instead FROM pgshadow_internal.rules()";

/// The foreign-key paths along which updating columns (`$2`, any when null) of some tables (`$1`) changes rows in
/// others, as [`CASCADE_PATHS`] gives them: `ON UPDATE CASCADE` followed while the columns it changes are referenced,
/// `SET NULL` and `SET DEFAULT` as the last step.
pub(crate) const UPDATE_PATHS: &str =
    "SELECT child, action, foreign_key, path, names FROM pgshadow_internal.cascade_paths($1, $2, true)";

/// The partitioned tables and materialized views, with the partitions below each that hold its rows.
pub(crate) const OTHER_TABLES: &str =
    "SELECT relid, relation_name, partitioned, leaves FROM pgshadow_internal.other_tables()";

/// Every index with its name and table.
pub(crate) const INDEXES: &str = "SELECT i.indexrelid, pg_catalog.format('%I.%I', n.nspname, c.relname), i.indrelid \
     FROM pg_catalog.pg_index AS i JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid \
     JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace";

/// The foreign-key paths along which deleting rows of some tables (`$1`) deletes or changes rows in others: `ON DELETE
/// CASCADE` followed through every level, `SET NULL` and `SET DEFAULT` as the last step; and `NO ACTION` and
/// `RESTRICT`, which refuse the deletion of a row still referenced, as the last step too. Per table reached, shortest
/// paths first: its oid, the action (`c`, `n`, `d`, `a`, `r`), the foreign key (`name on schema.table`), and the
/// path's tables' oids and names from the table deleted from. The catalog knows these even when the tables hold no rows.
pub(crate) const CASCADE_PATHS: &str =
    "SELECT child, action, foreign_key, path, names FROM pgshadow_internal.cascade_paths($1)";
