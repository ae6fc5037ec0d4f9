//! Loading one source into a new database of a shadow: the one place that drives the steps, in order. Each step
//! lives in a file of its own:
//!
//! 1. make the database, owned by [`Role::LoadOwner`] while the source loads (with schema `public`, where a
//!    superuser owns it: [`lend_public`]), and install the measuring machinery ([`crate::measure::install`]) before
//!    anything of the source's exists;
//! 2. read the source's statements: a SQL file split like psql ([`sql::read`]), or an archive's table of contents
//!    and schema ([`restore::read`]);
//! 3. create the roles it names ([`roles::create_owners`]) and the extensions it asks for ([`privileged::prepare`]):
//!    the steps that need a superuser, done by pgshadow from names it reads and quotes;
//! 4. run the source's own statements as the loader, which is not a superuser ([`sql::load`], [`restore::load`]),
//!    then copy a sample of a live source's rows ([`sample::copy`]); every failure goes to [`Failures`], which ties it
//!    to its cause;
//! 5. hand everything to the plan role ([`hand_over`]).

use super::fidelity::Failures;
use super::{privileged, restore, roles, sample, sql, Database, Schema};
use crate::error::{Error, Result};
use crate::measure;
use crate::report::{Fidelity, SampleInfo, SchemaInfo, SourceTrust};
use crate::shadow::{Role, Session, Shadow};

/// Creates the database `name`, loads `schema` into it (if any) as the steps above say, and hands it to the plan
/// role.
pub(super) async fn load_into(shadow: &Shadow, name: String, schema: Option<&Schema>) -> Result<Database> {
    shadow.create_database(&name, None, Role::LoadOwner).await?;
    let admin = shadow.admin(&name).await?;
    measure::install(&admin).await?;
    let public_owner = lend_public(shadow, &admin).await?;
    let (mut fidelity, mut info, mut sampled, mut data_loaded) = (Fidelity::default(), None, None, false);
    if let Some(schema) = schema {
        let loader = Loader { shadow, admin: &admin, database: &name, trusted: schema.trusted };
        (fidelity, data_loaded) = load_source(&loader, schema).await?;
        if let Some(sample) = &schema.sample {
            let (rows, tables) = sample::copy(&loader, sample).await?;
            sampled = Some(SampleInfo { percent: sample.percent, rows_copied: rows, tables });
            data_loaded = true;
        }
        if let Some(synthesis) = &schema.synthesis {
            let session = sample::replica_session(&loader).await?;
            let synthetic = crate::synth::fill(&session, synthesis).await?;
            // Tables left empty for want of statistics may hold any number of rows: their counts stay unknown.
            data_loaded = synthetic.empty_tables.iter().all(|t| t.empty_in_production);
            fidelity.synthetic = Some(synthetic);
        }
        tracing::info!(
            file = %schema.file,
            objects = fidelity.objects_in_source,
            failed = fidelity.warnings.len(),
            trusted = schema.trusted,
            "schema loaded"
        );
        info = Some(SchemaInfo {
            file: schema.file.clone(),
            statements: fidelity.objects_in_source,
            failed: fidelity.warnings.len(),
            sha256: String::new(),
        });
    }
    if let Some(owner) = &public_owner {
        give_public_back(shadow, &admin, owner).await?;
    }
    hand_over(shadow, &admin, &name).await?;
    Ok(Database {
        name,
        spoiled: Default::default(),
        schema: info,
        fidelity,
        sample: sampled,
        data_loaded,
        row_counts: None,
        baseline: None,
        template_reused: None,
        in_place: None,
        login: None,
    })
}

/// Steps 2 to 4 for the source's schema (and data): what loaded, what did not, and whether its table data did.
async fn load_source(loader: &Loader<'_>, schema: &Schema) -> Result<(Fidelity, bool)> {
    let mut failures = Failures::of(&schema.file, loader.shadow);
    let archive = match &schema.archive {
        Some(archive) => Some((archive, restore::read(loader.shadow, archive).await?)),
        None => None,
    };
    let split;
    let statements = match &archive {
        Some((_, read)) => &read.statements,
        None => {
            split = sql::read(schema);
            &split
        }
    };
    roles::create_owners(loader, statements, &mut failures).await?;
    let prepared = match loader.trusted {
        // A trusted source's statements run as a superuser: its extensions are created in their place.
        true => privileged::Prepared::default(),
        false => privileged::prepare(loader, statements).await?,
    };
    let loaded = match &archive {
        Some((archive, read)) => restore::load(loader, archive, read, &prepared, &mut failures).await?,
        None => sql::load(loader, schema, statements, prepared, &mut failures).await?,
    };
    let data = loaded.data;
    let mut fidelity = failures.into_fidelity(loaded);
    if loader.trusted {
        fidelity.source_trust = SourceTrust::Trusted;
    }
    Ok((fidelity, data))
}

/// Before PostgreSQL 15, `public` belongs to the bootstrap superuser, so a dump's `COMMENT ON SCHEMA public` (which
/// pg_dump of those versions writes) would need one. The load owner holds it while the source loads; returns the
/// superuser it belonged to, if it did.
async fn lend_public(shadow: &Shadow, admin: &Session) -> Result<Option<String>> {
    let owner: Option<String> = admin
        .client()
        .query_opt(
            "SELECT r.rolname::pg_catalog.text FROM pg_catalog.pg_namespace n \
             JOIN pg_catalog.pg_roles r ON r.oid = n.nspowner WHERE n.nspname = 'public' AND r.rolsuper",
            &[],
        )
        .await
        .map_err(|e| Error::pg("looking up the owner of schema public", e))?
        .map(|row| row.get(0));
    if owner.is_some() {
        let sql = format!("ALTER SCHEMA public OWNER TO {}", shadow.role(Role::LoadOwner));
        admin.client().batch_execute(&sql).await.map_err(|e| Error::pg("lending schema public to the load", e))?;
    }
    Ok(owner)
}

/// Gives `public` back to the superuser it belonged to, unless the source gave it to a role of its own.
async fn give_public_back(shadow: &Shadow, admin: &Session, owner: &str) -> Result<()> {
    // No row when the source dropped `public`.
    let lent = admin
        .client()
        .query_opt(
            "SELECT n.nspowner = r.oid FROM pg_catalog.pg_namespace n, pg_catalog.pg_roles r \
             WHERE n.nspname = 'public' AND r.rolname = $1",
            &[&shadow.role(Role::LoadOwner)],
        )
        .await
        .map_err(|e| Error::pg("looking up the owner of schema public", e))?
        .is_some_and(|row| row.get::<_, bool>(0));
    if lent {
        let sql = format!("ALTER SCHEMA public OWNER TO {}", crate::text::quote_ident(owner));
        admin.client().batch_execute(&sql).await.map_err(|e| Error::pg("giving schema public back", e))?;
    }
    Ok(())
}

/// Hands the loaded database and everything the load's roles own in it to the plan role, takes back every right
/// they were given there, and forgets what the measuring machinery saw during the load.
async fn hand_over(shadow: &Shadow, admin: &Session, name: &str) -> Result<()> {
    let plan = shadow.role(Role::Plan);
    let load_roles = [Role::Loader, Role::LoadOwner, Role::Installer].map(|r| shadow.role(r)).join(", ");
    let handover = format!(
        "ALTER DATABASE {} OWNER TO {plan}; REASSIGN OWNED BY {load_roles} TO {plan}; DROP OWNED BY {load_roles}; \
         TRUNCATE pgshadow_internal.changed, pgshadow_internal.dropped",
        crate::text::quote_ident(name)
    );
    admin.client().batch_execute(&handover).await.map_err(|e| Error::pg("handing the schema to the plan role", e))
}

/// Who runs a source's statements, and where.
pub(super) struct Loader<'a> {
    pub(super) shadow: &'a Shadow,
    /// The admin's session in the database, for pgshadow's own steps.
    pub(super) admin: &'a Session,
    pub(super) database: &'a str,
    /// `--trust-source`: the source runs as the installer (a superuser) instead of the loader.
    pub(super) trusted: bool,
}

impl Loader<'_> {
    /// A session the source's statements run in: the loader's, or for a trusted source the admin's acting as the
    /// installer.
    pub(super) async fn session(&self) -> Result<Session> {
        if !self.trusted {
            return self.shadow.connect(self.shadow.role(Role::Loader), self.database).await;
        }
        let session = self.shadow.connect(self.shadow.role(Role::Admin), self.database).await?;
        let set_role = format!("SET ROLE {}", self.shadow.role(Role::Installer));
        session.client().batch_execute(&set_role).await.map_err(|e| Error::pg("acting as the installer", e))?;
        Ok(session)
    }

    /// The role a client program (`pg_restore`) logs in as, and the role it then acts as (`--role`), if another.
    pub(super) fn program_roles(&self) -> (&str, Option<&str>) {
        match self.trusted {
            true => (self.shadow.role(Role::Admin), Some(self.shadow.role(Role::Installer))),
            false => (self.shadow.role(Role::Loader), None),
        }
    }
}
