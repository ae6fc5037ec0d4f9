//! Estimates for production: what a plan would do to production's rows, where the shadow did not hold them.
//!
//! Two sources make them. A sample of the source's rows (`--sample`) is measured, and each table's counts are scaled
//! by its own factor ([`sample_scales`]). A profile of production (`--profile`) gives a schema-only shadow its
//! counts ([`estimate`]): a table's rows for a whole-table operation, its WHERE clause's selectivity from the
//! profile's statistics ([`selectivity`]), and each foreign key's fan-out along the cascade paths (`fanout.rs`),
//! with the foreign keys read from the shadow ([`foreign_keys`]); and locks and rewrites get the table's size in
//! production, a rewrite an estimated duration at a rate measured on the shadow ([`rewrite_rate`]).
//! The report model of estimates, and the constructors other layers use, are in [`crate::report`]
//! ([`EffectEstimate`](crate::report::EffectEstimate), [`scale_measured`](crate::report::scale_measured)).

mod fanout;
mod keys;
mod now;
mod profile;
mod rate;
mod sample;
pub mod selectivity;
mod synthetic;

pub use keys::{foreign_keys, ForeignKey};
pub use profile::{estimate, production_sizes, Production};
pub use rate::rewrite_rate;
pub use sample::{sample_scales, sample_sizes};
pub use synthetic::{predict, synthetic_scales, Predictable, Raised};
