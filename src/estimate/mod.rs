//! Estimates for production: what a plan would do to production's rows, where the shadow did not hold them.
//!
//! Two sources make them. A sample of the source's rows (`--sample`) is measured, and each table's counts are scaled
//! by its own factor ([`sample_scales`]). A profile of production (`--profile`) gives a schema-only shadow its
//! counts ([`profile`]): a table's rows for a whole-table operation, its WHERE clause's selectivity from the
//! profile's statistics ([`selectivity`]), and each foreign key's fan-out along the cascade paths ([`fanout`]).
//! The report model of estimates, and the constructors other layers use, are in [`crate::report`]
//! ([`EffectEstimate`](crate::report::EffectEstimate), [`scale_measured`](crate::report::scale_measured)).

mod sample;

pub use sample::sample_scales;
