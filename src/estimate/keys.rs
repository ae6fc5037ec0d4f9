//! The foreign keys of the shadow's database, which a cascade's estimate follows: read from its catalog before the
//! plan runs, since production's schema is the shadow's.

use crate::error::Result;
use crate::shadow::Shadow;
use crate::source::Database;

pub use crate::shadow::ForeignKey;

/// Every foreign key of `database`.
pub async fn foreign_keys(shadow: &Shadow, database: &Database) -> Result<Vec<ForeignKey>> {
    let admin = shadow.admin(database.name()).await?;
    crate::shadow::foreign_keys(&admin).await
}
